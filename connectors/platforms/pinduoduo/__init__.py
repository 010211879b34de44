"""Pinduoduo (拼多多开放平台, PDD POP): client, pure mapping, renderer and simulator."""

PLATFORM = "pinduoduo"

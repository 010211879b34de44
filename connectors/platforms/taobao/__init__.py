"""Taobao / Tmall (TOP, Taobao Open Platform): client, pure mapping, renderer and simulator."""

PLATFORM = "taobao"

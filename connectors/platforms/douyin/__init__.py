"""Douyin Shop (抖店, Doudian Open Platform): client, pure mapping, renderer, simulator and push signatures."""

PLATFORM = "douyin"

"""Xiaohongshu (小红书, the "ark" open platform): client, pure mapping, renderer, simulator and push."""

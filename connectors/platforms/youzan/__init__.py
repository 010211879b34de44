"""Youzan (有赞云 open platform): client, pure mapping, renderer, simulator and push verification."""

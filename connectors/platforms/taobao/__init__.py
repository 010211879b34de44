"""Taobao / Tmall (TOP, Taobao Open Platform): client, pure mapping, renderer and simulator."""

PLATFORM = "taobao"
# Receivers come masked (with an OAID), but buyers type phone numbers and addresses into
# `buyer_message`, and apps approved to decrypt get receivers in clear: raw bodies are sealed.
RAW_BODY_PERSONAL = True

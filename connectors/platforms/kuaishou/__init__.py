"""Kuaishou Shop (快手小店, openapi.kwaixiaodian.com): client, pure mapping, renderer, simulator and push."""

PLATFORM = "kuaishou"

"""Shopify (Admin REST API): canonical mapping, webhook signatures, API client and a faithful simulator."""

PLATFORM = "shopify"

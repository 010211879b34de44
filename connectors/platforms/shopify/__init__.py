"""Shopify (Admin REST API): canonical mapping, webhook signatures, API client and a faithful simulator."""

PLATFORM = "shopify"
# Orders carry the customer's email, phone, name and shipping/billing addresses in clear: raw bodies are sealed.
RAW_BODY_PERSONAL = True

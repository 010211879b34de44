"""The SMS hub's pure core: templates and triggers (`infra/sms.toml`), recipient identity, and the sending rules."""

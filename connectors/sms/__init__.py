"""The SMS hub's edges: commercial gateways (Aliyun, Tencent), platforms' official channels, delivery reports and
replies, and the local simulator of all of them (port 8086)."""

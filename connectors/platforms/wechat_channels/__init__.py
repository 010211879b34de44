"""WeChat Channels shop (微信小店 / 视频号小店, `channels/ec` API): client, pure mapping, renderer, simulator."""

PLATFORM = "wechat_channels"

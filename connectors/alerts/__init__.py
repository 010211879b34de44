"""Alert channels (DingTalk, Feishu/Lark, WeCom, email, Aliyun SMS), their signing and local simulators.

- `message.AlertMessage` is what every channel sends; `channels.*Channel.send(message) -> SendResult`.
- `simulators.create_app()` serves faithful local stand-ins for the chat robots and the SMS gateway;
  `smtp_sink.start_smtp_sink()` is the local mail server. Both keep what they received in one `SimStore`.
"""

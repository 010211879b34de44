"""The SMS hub's keys and the local stack's simulated providers.

- `TONGLU_SMS_HASH_KEY` keys the hash every number is kept as (caps, opt-outs); `TONGLU_SMS_CALLBACK_TOKEN` is the
  secret in the callback URLs given to the providers. Production sets both; `tonglu up` generates them once into
  `$TONGLU_DATA_DIR/sms-keys` (mode 0600) so opt-outs and caps survive restarts, and `tonglu reset` wipes them with
  the data they belong to.
- The simulator approves exactly the templates of the SMS configuration, with the demo accounts whose secrets the
  local stack hands to the sender.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from connectors.alerts.sim_store import SMS_DEMO_SECRET
from connectors.sms.channels import channel_module
from connectors.sms.sim_state import TENCENT_DEMO_SECRET, ApprovedTemplate, SimState
from streams.sms.callbacks import report_path, uplink_path
from streams.sms.compose import variable_order
from streams.sms.templates import SmsConfig

HASH_KEY_ENV, CALLBACK_TOKEN_ENV = "TONGLU_SMS_HASH_KEY", "TONGLU_SMS_CALLBACK_TOKEN"
LOCAL_FILE = "sms-keys"
_GATEWAY_DEMO_SECRETS = {"aliyun": SMS_DEMO_SECRET, "tencent": TENCENT_DEMO_SECRET}


def hash_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The key of the numbers' hashes; SystemExit with the reason when it is missing or short."""
    value = ((os.environ if environ is None else environ).get(HASH_KEY_ENV) or "").strip()
    if len(value) < 16:
        raise SystemExit(f"错误 error: {HASH_KEY_ENV} must hold a secret of at least 16 characters (numbers are kept "
                         "only as hashes under it; `tonglu up` makes one)")
    return value.encode()


def callback_token(environ: Mapping[str, str] | None = None) -> str:
    value = ((os.environ if environ is None else environ).get(CALLBACK_TOKEN_ENV) or "").strip()
    if len(value) < 16:
        raise SystemExit(f"错误 error: {CALLBACK_TOKEN_ENV} must hold a secret of at least 16 characters (it is part "
                         "of the callback URLs given to the SMS providers)")
    return value


def demo_secrets(config: SmsConfig) -> dict[str, str]:
    """The simulated providers' and channels' secrets under the variable names the configuration gives."""
    out = {spec.secret_env: _GATEWAY_DEMO_SECRETS[spec.type] for spec in config.gateways.values()}
    for platform, spec in config.channels.items():
        module = channel_module(platform)
        if module is not None and spec.secret_env and hasattr(module, "DEMO_SECRET"):
            out[spec.secret_env] = module.DEMO_SECRET
        if module is not None and spec.session_env and hasattr(module, "DEMO_SESSION"):
            out[spec.session_env] = module.DEMO_SESSION
    return out


def local_sms_env(data_dir: Path, config: SmsConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the local stack: configured keys as they are, else the ones kept in data_dir/sms-keys
    (made once), and the simulators' demo secrets for whatever is not set."""
    environ = os.environ if environ is None else environ
    path = data_dir / LOCAL_FILE
    kept: dict[str, str] = {}
    if path.exists():
        kept = dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").split() if "=" in line)
    missing = {name: secrets.token_urlsafe(32) for name in (HASH_KEY_ENV, CALLBACK_TOKEN_ENV)
               if not environ.get(name) and name not in kept}
    if missing:
        kept.update(missing)
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(f"{k}={v}\n" for k, v in kept.items()))
    env = {k: v for k, v in kept.items() if not environ.get(k)}
    env.update({k: v for k, v in demo_secrets(config).items() if not environ.get(k)})
    return env


def approved_templates(config: SmsConfig) -> dict[str, dict[str, ApprovedTemplate]]:
    """What each provider and platform channel approved: every template under its code there."""
    out: dict[str, dict[str, ApprovedTemplate]] = {}
    for template in config.templates.values():
        approved = ApprovedTemplate(template.sign.strip("【】"), tuple(variable_order(template)), template.render)
        for provider, code in template.codes.items():
            out.setdefault(provider, {})[code] = approved
    return out


def simulator_state(config: SmsConfig, callback_http: str, token: str | None,
                    receipt_delay_s: float = 1.0) -> SimState:
    """The simulator of the configured gateways, pushing reports and replies to the sender at `callback_http`."""
    callbacks = {}
    if token:
        for spec in config.gateways.values():
            callbacks[spec.type] = {"report": callback_http.rstrip("/") + report_path(spec.type, token),
                                    "uplink": callback_http.rstrip("/") + uplink_path(spec.type, token)}
        for platform, channel in config.channels.items():
            if channel.reports:
                callbacks[platform] = {"report": callback_http.rstrip("/") + report_path(platform, token)}
    state = SimState(approved_templates(config), callbacks, receipt_delay_s)
    state.report_fields = {platform: dict(channel.report_fields) for platform, channel in config.channels.items()}
    return state


def command_keys(data_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Keys for a command run beside the local stack: the environment's, else those the stack keeps in the data
    directory (the sealing keys in raw-keys, the hash key in sms-keys)."""
    from infra.raw_keys import LOCAL_KEYS_FILE
    from schemas.sealing import KEYS_ENV, PROVIDER_ENV

    environ = os.environ if environ is None else environ
    out = {}
    raw = data_dir / LOCAL_KEYS_FILE
    if not environ.get(KEYS_ENV) and not environ.get(PROVIDER_ENV) and raw.exists():
        out[KEYS_ENV] = raw.read_text(encoding="utf-8").strip()
    kept = data_dir / LOCAL_FILE
    if not environ.get(HASH_KEY_ENV) and kept.exists():
        for line in kept.read_text(encoding="utf-8").split():
            if line.startswith(f"{HASH_KEY_ENV}="):
                out[HASH_KEY_ENV] = line.split("=", 1)[1]
    return out


def import_members(kafka_config: dict, topic: str, members: str | list, environ: Mapping[str, str]
                   ) -> tuple[int, list[str]]:
    """Publish the good rows of a members CSV (text) or of JSON rows (a list of objects) to sms.members (phones
    sealed, hashed, masked): (imported, one error per bad line or row). The CLI's and the API's import."""
    import time

    from connectors.sms.contacts import seal_contact
    from schemas.codec import AvroCodec
    from schemas.kafka import Publisher
    from schemas.sealing import Sealer, provider_from_env
    from streams.sms.members import member_record, parse_members_csv, parse_members_rows

    rows, errors = parse_members_csv(members) if isinstance(members, str) else parse_members_rows(members)
    provider = provider_from_env(environ)
    sealer = Sealer(provider) if provider is not None else None
    key = hash_key(environ)
    now, codec, records = int(time.time() * 1000), AvroCodec("SmsMember"), []
    for row in rows:
        seal = (lambda phone, row=row: seal_contact(sealer, phone, row.shop_id, row.member_id)) if sealer else None
        records.append(member_record(row, now, key, seal))
    if records:
        publisher = Publisher(kafka_config)
        publisher.publish([(topic, f"{r['shop_id']}:{r['member_id']}".encode(), codec.encode(r)) for r in records])
        publisher.close()
    return len(records), errors


def member_importer(kafka_config: dict, topic: str, data_dir: Path) -> Callable[[str | list], tuple[int, list[str]]]:
    """`import_members` with this process's keys (else those the local stack keeps in `data_dir`), for the API."""
    def run(members: str | list) -> tuple[int, list[str]]:
        environ = {**os.environ, **command_keys(data_dir)}
        try:
            return import_members(kafka_config, topic, members, environ)
        except SystemExit as exc:  # a missing key: the request fails, the API goes on
            raise ValueError(str(exc)) from None

    return run

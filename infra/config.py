"""Settings from the environment; the same code runs locally and against real clusters."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from schemas.topics import Topics

INFRA_DIR = Path(__file__).parent


def default_simulators() -> dict[str, str]:
    """Every platform with a `sim_port` in its manifest, simulated on that port of the loopback."""
    from connectors import platforms

    return {code: f"http://127.0.0.1:{p.manifest.sim_port}" for code, p in platforms.registry().items()
            if p.manifest.sim_port is not None}


def _simulators(spec: str | None) -> dict:
    """'code=http://...,code=http://...' ('none' for a production deployment; unset: the manifests' ports)."""
    if spec is None:
        return default_simulators()
    if spec.strip().lower() in ("", "none"):
        return {}
    return dict(part.split("=", 1) for part in spec.split(",") if "=" in part)


def _env(name: str, default: str | None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    http: str = "http://127.0.0.1:8080"
    webhook_http: str = "http://127.0.0.1:8090"  # where platforms push (webhooks)
    clickhouse_url: str | None = None
    clickhouse_analyst_url: str | None = None  # a read-only user for analysts' SQL (infra/deploy/)
    schema_registry_url: str | None = None
    data_dir: Path = Path(".tonglu")
    partitions: int = 4
    topics: Topics = field(default_factory=Topics)
    kafka_extra: dict = field(default_factory=dict)  # security.protocol, sasl.* for real clusters
    shops_file: Path | None = None
    anomaly_rules: Path = INFRA_DIR / "anomaly_rules.toml"
    alert_routing: Path = INFRA_DIR / "alert_routing.toml"
    alert_sim_http: str = "http://127.0.0.1:8083"  # local chat/SMS simulators
    sms_config: Path = INFRA_DIR / "sms.toml"  # SMS templates, triggers, rules, gateways and channels
    sms_sim_http: str = "http://127.0.0.1:8086"  # local SMS gateways and platform message channels
    sms_callback_http: str = "http://127.0.0.1:8095"  # the SMS sender's receiver of delivery reports and replies
    alert_smtp_port: int = 8025  # local SMTP sink
    simulators: dict = field(default_factory=dict)  # platform -> simulator URL, local stack only
    # On a shared machine the ClickHouse projection yields CPU to the order path (normalize, detect,
    # alert): it batches whatever queued meanwhile, while findings must not wait behind its merges.
    projector_nice: int = 5
    tokens_file: Path | None = None  # API tokens (hashed); default data_dir/tokens.json
    # Token-less viewer access from loopback: off unless set (`tonglu up` turns it on for the local stack).
    anonymous_viewer: bool = False
    trusted_proxies: str = ""  # addresses/networks whose X-Forwarded-For names the client
    heartbeat_seconds: float = 2.0  # every worker process beats this often on the heartbeats topic
    health_stale_seconds: float = 10.0  # a stage none of whose processes beat for this long is down
    archive_retention_days: float = 30.0  # raw record archive under data_dir/archive; 0 keeps everything
    tracking_sim_http: str = "http://127.0.0.1:8085"  # local courier-tracking simulator (Kuaidi100 conventions)
    kuaidi100_url: str | None = None  # where shipments are subscribed; default: the simulator's /poll
    kuaidi100_key: str = "kd100demoKey"  # the subscriber's authorisation key (the simulator's demo key)
    tracking_secret: str = "tonglu-tracking-demo-secret"  # derives each subscription's push salt
    tracking_callback: str | None = None  # public URL of /webhooks/kuaidi100; default: on webhook_http
    erp_routing: Path = INFRA_DIR / "erp.toml"  # ERP endpoints every order event is delivered to
    erp_sim_http: str = "http://127.0.0.1:8084"  # local ERP/WMS simulator (and its warehouse)

    @classmethod
    def from_env(cls) -> Settings:
        extra = {}
        for key, value in os.environ.items():  # TONGLU_KAFKA_OPT_SASL_MECHANISM=PLAIN -> sasl.mechanism
            if key.startswith("TONGLU_KAFKA_OPT_"):
                extra[key[len("TONGLU_KAFKA_OPT_"):].lower().replace("_", ".")] = value
        return cls(
            kafka_bootstrap=_env("TONGLU_KAFKA_BOOTSTRAP", cls.kafka_bootstrap),
            http=_env("TONGLU_HTTP", cls.http).rstrip("/"),
            webhook_http=_env("TONGLU_WEBHOOK_HTTP", cls.webhook_http).rstrip("/"),
            clickhouse_url=_env("TONGLU_CLICKHOUSE_URL", None),
            clickhouse_analyst_url=_env("TONGLU_CLICKHOUSE_ANALYST_URL", None),
            schema_registry_url=_env("TONGLU_SCHEMA_REGISTRY_URL", None),
            data_dir=Path(_env("TONGLU_DATA_DIR", ".tonglu")),
            partitions=int(_env("TONGLU_PARTITIONS", "4")),
            topics=Topics(prefix=_env("TONGLU_TOPIC_PREFIX", "") or ""),
            kafka_extra=extra,
            shops_file=Path(p) if (p := _env("TONGLU_SHOPS_FILE", None)) else None,
            anomaly_rules=Path(_env("TONGLU_ANOMALY_RULES", str(cls.anomaly_rules))),
            alert_routing=Path(_env("TONGLU_ALERT_ROUTING", str(cls.alert_routing))),
            alert_sim_http=_env("TONGLU_ALERT_SIM_HTTP", cls.alert_sim_http).rstrip("/"),
            sms_config=Path(_env("TONGLU_SMS_CONFIG", str(cls.sms_config))),
            sms_sim_http=_env("TONGLU_SMS_SIM_HTTP", cls.sms_sim_http).rstrip("/"),
            sms_callback_http=_env("TONGLU_SMS_CALLBACK_HTTP", cls.sms_callback_http).rstrip("/"),
            alert_smtp_port=int(_env("TONGLU_ALERT_SMTP_PORT", str(cls.alert_smtp_port))),
            simulators=_simulators(_env("TONGLU_SIMULATORS", None)),
            projector_nice=int(_env("TONGLU_PROJECTOR_NICE", str(cls.projector_nice))),
            tokens_file=Path(p) if (p := _env("TONGLU_TOKENS_FILE", None)) else None,
            anonymous_viewer=_env("TONGLU_ANONYMOUS_VIEWER", "0").strip().lower() in ("1", "true", "yes", "on"),
            trusted_proxies=_env("TONGLU_TRUSTED_PROXIES", "") or "",
            heartbeat_seconds=float(_env("TONGLU_HEARTBEAT_SECONDS", str(cls.heartbeat_seconds))),
            health_stale_seconds=float(_env("TONGLU_HEALTH_STALE_SECONDS", str(cls.health_stale_seconds))),
            archive_retention_days=float(_env("TONGLU_ARCHIVE_RETENTION_DAYS", str(cls.archive_retention_days))),
            tracking_sim_http=_env("TONGLU_TRACKING_SIM_HTTP", cls.tracking_sim_http).rstrip("/"),
            kuaidi100_url=_env("TONGLU_KUAIDI100_URL", None),
            kuaidi100_key=_env("TONGLU_KUAIDI100_KEY", cls.kuaidi100_key),
            tracking_secret=_env("TONGLU_TRACKING_SECRET", cls.tracking_secret),
            tracking_callback=_env("TONGLU_TRACKING_CALLBACK_URL", None),
            erp_routing=Path(_env("TONGLU_ERP_ROUTING", str(cls.erp_routing))),
            erp_sim_http=_env("TONGLU_ERP_SIM_HTTP", cls.erp_sim_http).rstrip("/"),
        )

    def kafka(self, **overrides) -> dict:
        """confluent-kafka client config for these settings."""
        return {"bootstrap.servers": self.kafka_bootstrap, **self.kafka_extra, **overrides}

    @property
    def tokens_path(self) -> Path:
        return self.tokens_file or self.data_dir / "tokens.json"

    @property
    def admin_token_path(self) -> Path:
        """The local stack's admin token (written by `tonglu up`, read by the CLI)."""
        return self.data_dir / "admin.token"

    def api_token(self) -> str | None:
        """The token CLI commands send to the API: TONGLU_API_TOKEN, else the local admin token."""
        token = _env("TONGLU_API_TOKEN", None)
        if token is None:
            try:
                token = self.admin_token_path.read_text(encoding="ascii").strip() or None
            except (OSError, UnicodeDecodeError):
                token = None
        return token

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def http_host_port(self) -> tuple[str, int]:
        return _host_port(self.http)

    @property
    def alert_sim_host_port(self) -> tuple[str, int]:
        return _host_port(self.alert_sim_http)

    @property
    def webhook_host_port(self) -> tuple[str, int]:
        return _host_port(self.webhook_http)

    @property
    def tracking_sim_host_port(self) -> tuple[str, int]:
        return _host_port(self.tracking_sim_http)

    def tracking_account(self):
        """Where and as whom the tracker subscribes shipments (`connectors.tracking.subscriber`)."""
        from connectors.tracking.receiver import PATH
        from connectors.tracking.subscriber import TrackingAccount

        return TrackingAccount(poll_url=self.kuaidi100_url or f"{self.tracking_sim_http}/poll", key=self.kuaidi100_key,
                               secret=self.tracking_secret, callback=self.tracking_callback or f"{self.webhook_http}{PATH}")

    @property
    def erp_sim_host_port(self) -> tuple[str, int]:
        return _host_port(self.erp_sim_http)

    @property
    def erp_sim_token_path(self) -> Path:
        """The operator token the local ERP simulator's warehouse posts shipments with (written by `tonglu up`)."""
        return self.data_dir / "erp-sim.token"

    def erp_variables(self) -> dict[str, str]:
        """What `${...}` in the ERP routing file may name: the environment, and the simulator's address."""
        return {**os.environ, "TONGLU_ERP_SIM_HTTP": self.erp_sim_http}

    @property
    def sms_sim_host_port(self) -> tuple[str, int]:
        return _host_port(self.sms_sim_http)

    @property
    def sms_callback_host_port(self) -> tuple[str, int]:
        return _host_port(self.sms_callback_http)


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.split("://", 1)[-1].split("/", 1)[0].rpartition(":")
    return host, int(port)


def local_alert_secrets() -> dict[str, str]:
    """The simulated robots' and SMS gateway's demo secrets, as the routing file's `*_env` variables."""
    from connectors.alerts.sim_store import DINGTALK_DEMO_SECRET, FEISHU_DEMO_SECRET, SMS_DEMO_SECRET

    return {"TONGLU_DINGTALK_SECRET": DINGTALK_DEMO_SECRET, "TONGLU_FEISHU_SECRET": FEISHU_DEMO_SECRET,
            "TONGLU_SMS_SECRET": SMS_DEMO_SECRET}


def local_erp_secrets() -> dict[str, str]:
    """The local ERP simulator's demo secrets, as the shipped ERP routing file's `secret_env` variables."""
    from connectors.erp.simulator import DEMO_SECRET, QIMEN_DEMO_SECRET

    return {"TONGLU_ERP_SECRET": DEMO_SECRET, "TONGLU_QIMEN_SECRET": QIMEN_DEMO_SECRET}


def write_local_routing(path: Path, alert_sim_http: str, smtp_port: int | None = None,
                        max_immediate_per_window: int | None = None) -> Path:
    """A copy of the shipped alert routing pointed at alert simulators on other ports (tests, bench)."""
    text = (INFRA_DIR / "alert_routing.toml").read_text(encoding="utf-8")
    text = text.replace(Settings.alert_sim_http, alert_sim_http.rstrip("/"))
    if smtp_port is not None:
        text = text.replace(f"port = {Settings.alert_smtp_port}", f"port = {smtp_port}")
    if max_immediate_per_window is not None:
        text = re.sub(r"(?m)^max_immediate_per_window = \d+", f"max_immediate_per_window = {max_immediate_per_window}",
                      text)
    path.write_text(text, encoding="utf-8")
    return path

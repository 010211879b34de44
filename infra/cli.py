"""`tonglu`: the front door (normalize, up, sim, sql, bench, worker, topics, replay, reset, keys, erp, sms)."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import typer

from infra.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Tonglu (通路): order hub for multi-platform sellers")
sim = typer.Typer(no_args_is_help=True, help="Drive the platform simulators of a running stack.")
app.add_typer(sim, name="sim")
keys = typer.Typer(no_args_is_help=True, help="Keys that seal raw.orders bodies (TONGLU_RAW_KEYS).")
app.add_typer(keys, name="keys")
token_app = typer.Typer(no_args_is_help=True, help="API tokens: create, list, revoke (hashed at rest).")
app.add_typer(token_app, name="token")
erp_app = typer.Typer(no_args_is_help=True, help="ERP delivery: replay what an endpoint refused (erp.dlq).")
app.add_typer(erp_app, name="erp")
sms_app = typer.Typer(no_args_is_help=True, help="SMS hub: the members table of member care.")
app.add_typer(sms_app, name="sms")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _settings() -> Settings:
    """Settings from the environment; without TONGLU_KAFKA_BOOTSTRAP a local stack's broker may sit on
    TONGLU_LOCAL_BROKER_PORT (tests and side-by-side stacks)."""
    settings = Settings.from_env()
    if "TONGLU_KAFKA_BOOTSTRAP" not in os.environ and os.environ.get("TONGLU_LOCAL_BROKER_PORT"):
        settings = dataclasses.replace(settings, kafka_bootstrap=f"127.0.0.1:{os.environ['TONGLU_LOCAL_BROKER_PORT']}")
    return settings


def _require_broker(settings: Settings) -> None:
    from infra.broker import broker_answers

    if not broker_answers(settings.kafka(), timeout=3.0):
        _fail(f"消息代理不可用 the Kafka broker at {settings.kafka_bootstrap} is not answering, so nothing would "
              "flow; is the stack running? (`tonglu up` restarts its own broker; see /healthz)")


@app.command()
def normalize(file: Path = typer.Argument(..., help="a raw payload as the platform API returned it"),
              platform: str = typer.Option(..., "--platform", "-p"), shop: str = typer.Option(..., "--shop", "-s"),
              content_type: str | None = typer.Option(None, help="json or xml (default: sniffed)")) -> None:
    """Map one raw platform payload to canonical orders, printed as a JSON array."""
    from connectors import platforms
    from schemas.canonical import MappingError, order_json

    try:
        body = file.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")
    kind = content_type or ("xml" if body.lstrip()[:1] == b"<" else "json")
    try:
        orders = platforms.map_payload(platform, body, kind, shop)
    except (MappingError, platforms.UnknownPlatform) as exc:
        _fail(str(exc))
    for order in orders:
        order["version"] = 1
    typer.echo(json.dumps([order_json(o) for o in orders], ensure_ascii=False, indent=2))
    typer.echo(f"{platforms.label(platform)} · 店铺 shop {shop}: {len(orders)} 笔订单 orders", err=True)


@app.command()
def up(demo_rate: float = typer.Option(5.0, help="new demo orders per second in all, split evenly over the demo "
                                                  "shops of every simulated platform (0: none)")) -> None:
    """Start the whole local stack in the foreground; Ctrl-C stops every process it started."""
    from infra.stack import up as run_stack

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The local stack lets loopback callers read without a token (status page); TONGLU_ANONYMOUS_VIEWER=0 refuses.
    os.environ.setdefault("TONGLU_ANONYMOUS_VIEWER", "1")
    run_stack(_settings(), own_broker="TONGLU_KAFKA_BOOTSTRAP" not in os.environ, demo_rate=demo_rate)


@app.command()
def worker(name: str = typer.Argument(
        ..., help="simulators | connectors | normalizer | projector | detector | alerter | tracker | erp")) -> None:
    """Run one process of the stack (what `tonglu up` starts)."""
    from infra import workers

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("aiohttp.access", "aiokafka", "faust", "mode", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if name not in workers.WORKERS:
        _fail(f"unknown worker {name!r}; one of {', '.join(workers.WORKERS)}")
    settings = Settings.from_env()
    from schemas.codec import use_schema_registry

    use_schema_registry(settings.schema_registry_url)  # before any codec is created
    if name == "simulators":
        workers.simulators(settings, demo_rate=float(os.environ.get("TONGLU_DEMO_RATE", "5")))
    else:
        workers.WORKERS[name](settings)


@app.command()
def topics() -> None:
    """Create the topics (idempotent): for a real cluster before the first deployment."""
    from infra.broker import ensure_topics

    settings = _settings()
    _require_broker(settings)
    ensure_topics(settings.kafka(), settings.topics.specs(), settings.partitions,
                  int(os.environ.get("TONGLU_REPLICATION", "1")))
    typer.echo("\n".join(t.name for t in settings.topics.specs()))


@app.command()
def replay(platform: str | None = typer.Option(None, "--platform", "-p", help="only this platform"),
           shop: str | None = typer.Option(None, "--shop", "-s", help="only this shop id"),
           since: str | None = typer.Option(None, help="only records fetched at or after: ISO time or epoch ms"),
           as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object")) -> None:
    """Re-publish archived raw records to raw.orders (after a broker loss, or to re-normalize history)."""
    from infra.broker import wait_for_broker
    from infra.replay import replay as replay_archive
    from projections.anomaly_queries import parse_since

    settings = _settings()
    try:
        since_ms = parse_since(since)
    except ValueError as exc:
        _fail(str(exc))
    try:
        wait_for_broker(settings.kafka_bootstrap, timeout=10)
    except TimeoutError:
        _fail(f"连不上 Kafka {settings.kafka_bootstrap} — no Kafka broker answers at {settings.kafka_bootstrap}; "
              "is the stack running (`make run`)?")
    count = replay_archive(settings, platform, shop, since_ms)
    topic = settings.topics.raw_orders
    if as_json:
        typer.echo(json.dumps({"published": count, "topic": topic, "platform": platform, "shop": shop,
                               "since_ms": since_ms}))
    else:
        typer.echo(f"已重放 {count} 条原始记录到 {topic} · republished {count} archived raw records to {topic}")


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation")) -> None:
    """Wipe the local data directory (ClickHouse, checkpoints, raw archive, simulated platforms) on purpose."""
    from infra.stack import port_in_use

    settings = _settings()
    target = settings.data_dir.resolve()
    if target in (Path("/").resolve(), Path.home().resolve(), Path.cwd().resolve()):
        _fail(f"拒绝删除 {target} — refusing to wipe {target}: point TONGLU_DATA_DIR at a directory of its own")
    urls = [settings.http, settings.webhook_http, *settings.simulators.values()]
    if "TONGLU_KAFKA_BOOTSTRAP" not in os.environ:  # the local stack's own broker
        urls.append(f"tcp://{settings.kafka_bootstrap}")
    busy = [url for url in urls if port_in_use(url)]
    if busy:
        _fail(f"本地栈仍在运行，请先停止 — a stack is running ({', '.join(busy)} in use); stop it first")
    if not target.exists():
        typer.echo(f"{target} 不存在，无需清空 · {target} does not exist: nothing to wipe")
        return
    if not yes:
        typer.confirm(f"删除 {target} 中的全部本地数据（ClickHouse、检查点、原始记录归档、模拟平台）？ "
                      f"Delete all local data in {target} (ClickHouse, checkpoints, raw archive, simulated "
                      "platforms)?", abort=True)
    shutil.rmtree(target)
    typer.echo(f"已清空 {target} · wiped {target}")


def _post(url: str, payload: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        _fail(f"{url}: HTTP {exc.code}: {detail}")
    except (urllib.error.URLError, OSError) as exc:
        _fail(f"{url} is not reachable ({exc}); is the stack running (`make run`)?")


@sms_app.command("members")
def sms_members(file: Path = typer.Argument(..., help="CSV: member_id, shop_id, phone or platform+token, name, "
                                                       "birthday, points, consent")) -> None:
    """Import members for birthday greetings and points notices; bad lines are refused with their numbers."""
    from infra.sms_local import command_keys, import_members

    settings = _settings()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
    _require_broker(settings)
    environ = {**os.environ, **command_keys(settings.data_dir)}
    try:
        count, errors = import_members(settings.kafka(), settings.topics.sms_members, text, environ)
    except ValueError as exc:
        _fail(str(exc))
    for error in errors:
        typer.echo(f"拒绝 refused {file}: {error}", err=True)
    typer.echo(f"已导入 {count} 位会员 imported {count} members" + (f"; {len(errors)} 行被拒绝 lines refused"
                                                              if errors else ""))
    if errors:
        raise typer.Exit(1)


@sim.command("orders")
def sim_orders(platform: str = typer.Option(..., "--platform", "-p"), shop: str = typer.Option(..., "--shop", "-s"),
               count: int = typer.Option(1, "--count", "-n", min=1, max=100_000),
               unpaid: bool = typer.Option(False, help="leave the orders waiting for payment"),
               anomaly: str | None = typer.Option(None, help="a defect the orders carry: zero_amount, "
                                                     "amount_mismatch, duplicate_order, invalid_address, "
                                                     "invalid_phone, price_anomaly, quantity_spike")) -> None:
    """Create COUNT new orders in a platform simulator and print their canonical order ids."""
    from connectors import platforms

    settings = _settings()
    try:
        code = platforms.get(platform).code  # an alias (tmall) is simulated by its platform's simulator
    except platforms.UnknownPlatform as exc:
        _fail(str(exc))
    base = settings.simulators.get(code)
    if base is None:
        _fail(f"{platforms.label(code)} 没有模拟器 has no simulator; simulated platforms: "
              f"{', '.join(settings.simulators) or 'none'}")
    _require_broker(settings)
    made = _post(f"{base}/_sim/orders", {"shop_id": shop, "count": count, "paid": not unpaid, "anomaly": anomaly})
    typer.echo(json.dumps([f"{code}:{shop}:{ext}" for ext in made["external_ids"]]))
    typer.echo(f"{platforms.label(code)} 模拟器 simulator · 店铺 shop {shop}: "
               f"{len(made['external_ids'])} 笔新订单 new orders", err=True)


SIM_ACTS = ("pay", "ship", "change-address", "request-refund", "cancel", "deliver")


@sim.command("order")
def sim_order(order_id: str = typer.Argument(..., help="the canonical order id, platform:shop:external_id"),
              do: str = typer.Option(..., "--do", help=" | ".join(SIM_ACTS))) -> None:
    """Act on one order in its platform's simulator, as the buyer or the platform would, and print the
    platform's new status (its own value on stdout; what it means on stderr)."""
    from connectors import platforms
    from connectors.simkit.persistence import order_from_dict

    if do not in SIM_ACTS:
        _fail(f"--do must be one of {', '.join(SIM_ACTS)}, not {do!r}")
    platform, shop, external_id = (order_id.split(":", 2) + ["", ""])[:3]
    try:
        code = platforms.get(platform).code
    except platforms.UnknownPlatform as exc:
        _fail(str(exc))
    base = _settings().simulators.get(code)
    if not shop or not external_id or base is None:
        _fail(f"{order_id!r} is not platform:shop:external_id of a simulated platform "
              f"({', '.join(_settings().simulators) or 'none'})")
    done = _post(f"{base}/_sim/orders/{external_id}/do", {"act": do.replace("-", "_"), "shop_id": shop})
    body = platforms.module(code, "render").page_body([order_from_dict(done["order"])])
    (order,) = platforms.map_payload(platform, body, "json", shop)
    typer.echo(order["platform_status"])
    typer.echo(f"{platforms.label(platform)} 模拟器 simulator · 订单 order {order_id}: {do} → 平台状态 platform status "
               f"{order['platform_status']} ({order['status']}, 退款 refund {order['refund_status']})", err=True)


@app.command()
def sql(query: str = typer.Argument(..., help="one SELECT / WITH / SHOW TABLES / SHOW CREATE TABLE / DESCRIBE")) -> None:
    """Read-only SQL over the tonglu tables, under the analyst limits (through the projector's /api/sql)."""
    settings = Settings.from_env()
    result = _post(f"{settings.http}/api/sql", {"sql": query}, settings.api_token())
    columns = result.get("columns", [])
    typer.echo("\t".join(columns))
    for row in result.get("rows", []):
        typer.echo("\t".join("" if v is None else str(v) for v in row))


def _token_store():
    from projections.tokens import TokenStore

    return TokenStore(Settings.from_env().tokens_path)


@token_app.command("create")
def token_create(role: str = typer.Option(..., "--role", help="viewer | operator | admin"),
                 name: str = typer.Option(..., "--name", help="who holds it (a person or a system)")) -> None:
    """Create a token and print it ALONE on stdout (shown only now; only its hash is stored)."""
    from projections.access import Role
    from projections.tokens import TokenError

    try:
        token, record = _token_store().create(name, Role.parse(role))
    except (TokenError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(token)
    typer.echo(f"已创建令牌 created token {record.id} ({record.name}, {record.role}); "
               f"只显示这一次 it is shown only once", err=True)


@token_app.command("list")
def token_list(all_: bool = typer.Option(False, "--all", help="include revoked tokens")) -> None:
    """Id, name, role, created, last four characters and state of each token (never the token)."""
    from projections.tokens import TokenError

    try:
        records = _token_store().records()
    except TokenError as exc:
        _fail(str(exc))
    typer.echo("id\tname\trole\tcreated\tends with\tstate")
    for r in records:
        if r.active or all_:
            state = "有效 active" if r.active else f"已吊销 revoked {r.revoked_at}"
            typer.echo(f"{r.id}\t{r.name}\t{r.role}\t{r.created_at}\t…{r.last4}\t{state}")


@token_app.command("revoke")
def token_revoke(name_or_id: str = typer.Argument(..., help="a token id, or the name of an active token")) -> None:
    """Revoke a token; the running API refuses it from its next request on."""
    from projections.tokens import TokenError

    try:
        record = _token_store().revoke(name_or_id)
    except TokenError as exc:
        _fail(str(exc))
    typer.echo(f"已吊销 revoked {record.id} ({record.name}, {record.role})")


@erp_app.command("replay")
def erp_replay(endpoint: str = typer.Option(..., "--endpoint", "-e", help="the endpoint's name in the ERP routing file"),
               since: str | None = typer.Option(None, help="only dead letters failed at or after: ISO time or epoch ms"),
               attempts: int = typer.Option(3, min=1, max=20, help="attempts per event before it is dead-lettered again"),
               as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object")) -> None:
    """Deliver an endpoint's dead letters (erp.dlq) again, each order's in version order."""
    import asyncio

    from infra.config import local_erp_secrets
    from projections.anomaly_queries import parse_since
    from streams.erp.config import ErpConfigError, load_erp_routing
    from streams.erp.replay import replay as replay_dead_letters

    settings = _settings()
    # against the local stack, the simulator's demo secrets unless the environment names others
    env = os.environ if "TONGLU_KAFKA_BOOTSTRAP" in os.environ else {**local_erp_secrets(), **os.environ}
    try:
        since_ms = parse_since(since)
        endpoints = {e.name: e for e in load_erp_routing(settings.erp_routing, settings.erp_variables())}
        if endpoint not in endpoints:
            _fail(f"未知端点 unknown endpoint {endpoint!r} in {settings.erp_routing}; "
                  f"known: {', '.join(endpoints) or 'none'}")
        secret = endpoints[endpoint].secret(env)
    except (ValueError, ErpConfigError) as exc:
        _fail(str(exc))
    _require_broker(settings)
    result = asyncio.run(replay_dead_letters(settings.kafka(), settings.topics, endpoints[endpoint], secret, since_ms,
                                             attempts))
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"{endpoint}: 重投 {result['selected']} 条死信，成功 {result['delivered']}，再次失败 "
                   f"{result['failed_again']}（已重新写入 {result['topic']}） · replayed {result['selected']} dead "
                   f"letters: {result['delivered']} delivered, {result['failed_again']} failed again "
                   f"(dead-lettered again)")
    if result["failed_again"]:
        raise typer.Exit(1)


@app.command()
def bench(quick: bool = typer.Option(False, help="smaller volumes (for a smoke run)")) -> None:
    """Run the benchmark suite and print its figures."""
    from infra.bench.suite import run

    sys.exit(run(quick=quick))


@app.command()
def chaos(orders: int = typer.Option(100_000, help="orders the simulators create"),
          rate: float = typer.Option(1_500.0, help="orders created per second"),
          kill_every: float = typer.Option(10.0, help="seconds between two SIGKILLs of a random worker"),
          external_broker: bool = typer.Option(False, help="a broker started apart from the stack (frozen once, "
                                                           "as a cluster node that fails, instead of killed)"),
          kill_broker: bool = typer.Option(True, help="kill (or freeze) the broker once, halfway")) -> None:
    """Orders flow while workers (and the broker once) are killed; prints what was lost or doubled."""
    from infra.bench.chaos import run_chaos

    figures = run_chaos(orders=orders, rate=rate, kill_every=kill_every, external_broker=external_broker,
                        kill_broker=kill_broker)
    for line in figures.lines():
        typer.echo(line)
    sys.exit(0 if figures.lost == 0 and figures.duplicate_event_rows == 0 and figures.duplicate_order_rows == 0
             else 1)


@keys.command("rotate")
def keys_rotate(key_id: str | None = typer.Option(None, "--id", help="id of the new key (default: k<UTC time>)")) -> None:
    """Print TONGLU_RAW_KEYS with a new key first and the current keys after it (stdout alone)."""
    from infra.raw_keys import rotated
    from schemas.sealing import KEYS_ENV, KeyConfigError

    try:
        typer.echo(rotated(os.environ.get(KEYS_ENV, ""), key_id))
    except KeyConfigError as exc:
        _fail(str(exc))


if __name__ == "__main__":
    app()

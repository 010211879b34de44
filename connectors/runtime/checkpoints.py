"""Per-shop polling checkpoints that survive a restart: a small JSON file, replaced atomically."""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from connectors.runtime.atomic import write_atomically

log = logging.getLogger(__name__)


class CheckpointStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, int] = {}
        if self.path.exists():
            try:
                self._data = json.loads(self.path.read_text())
            except ValueError as exc:  # only a file from before writes were fsynced; re-polling is harmless
                log.warning("检查点文件损坏，从头同步 checkpoints %s unreadable (%s): shops sync from scratch",
                            self.path, exc)

    def get(self, key: str) -> int | None:
        return self._data.get(key)

    def set(self, key: str, value_ms: int) -> None:
        with self._lock:
            self._data[key] = value_ms
            write_atomically(self.path, json.dumps(self._data, indent=0, sort_keys=True).encode())

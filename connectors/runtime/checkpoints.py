"""Per-shop polling checkpoints that survive a restart: a small JSON file, replaced atomically."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class CheckpointStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, int] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str) -> int | None:
        return self._data.get(key)

    def set(self, key: str, value_ms: int) -> None:
        with self._lock:
            self._data[key] = value_ms
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._data, indent=0, sort_keys=True))
            os.replace(tmp, self.path)

"""troupe's content-addressed file store for LLM calls.

One JSON file per key, sharded by the key's first two hex digits. Writes go to a temporary file in
the same directory and are renamed into place, so a reader sees either nothing or a whole entry,
and two processes writing the same key (the same content) cannot corrupt it. A lookup is one
``open`` + ``json.loads`` (~0.05 ms), which is why this, not a Prefect task, backs the call cache:
a cached Prefect task run costs 6-10 ms here.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from .base import register_backend


class FileCallCache:
    """A directory of ``calls/<key[:2]>/<key>.json`` entries under the cache root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root) / "calls"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            with open(self._path(key), "rb") as handle:
                return json.loads(handle.read())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, OSError):
            return None  # an unreadable entry is a miss; the next put replaces it

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        # A name no other writer uses (process and thread), so writers never share a temporary file.
        tmp = path.parent / f".{key[:16]}-{os.getpid()}-{threading.get_ident()}.tmp"
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            handle = open(tmp, "wb")
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(tmp, "wb")
        try:
            with handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json"))


register_backend("files", FileCallCache)

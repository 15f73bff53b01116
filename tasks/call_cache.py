"""A call cache backed by Prefect's result store, plugged into troupe's CallCache interface.

troupe defines the interface (``troupe.cache.CallCache``) and a registry of backends; importing
this module registers ``[cache] backend = prefect``: records go through
``prefect.results.ResultStore`` with a JSON serializer (never cloudpickle) into local result
storage under ``[cache] dir``. Prefect's LocalFileSystem writes a file in place, which lets a
concurrent reader see half a record, so the storage here writes to a temporary file and renames it.

It is not the default. Measured by ``python -m bench.gateway``, a hit costs ~10x troupe's own
FileCallCache (still inside the 1 ms budget), and the library would have to import Prefect
(~1.5 s) in every notebook to share it. The README's "Caching" section has the figures.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import LocalFileSystem
from prefect.results import ResultStore
from prefect.serializers import JSONSerializer

from troupe.cache import register_backend


def _atomic_write(path: Path, content: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)


class AtomicLocalFileSystem(LocalFileSystem):
    """LocalFileSystem whose writes are atomic (write to a temporary file, then rename)."""

    _block_type_slug = "troupe-atomic-local-file-system"

    async def awrite_path(self, path: str, content: bytes) -> str:
        return _atomic_write(self._resolve_path(path), content)

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:
        return _atomic_write(self._resolve_path(path), content)


class PrefectCallCache:
    """troupe's CallCache on Prefect's ResultStore (JSON records, atomic local storage)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root) / "prefect-calls"
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = ResultStore(
            result_storage=AtomicLocalFileSystem(basepath=str(self.root)),
            serializer=JSONSerializer(),
            cache_result_in_memory=False,
        )

    def get(self, key: str) -> dict[str, Any] | None:
        if not (self.root / key).exists():
            return None
        try:
            return self.store.read(key).result
        except Exception:  # an unreadable record is a miss, as in FileCallCache
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.store.write(value, key=key)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def __len__(self) -> int:
        return sum(1 for p in self.root.iterdir() if not p.name.startswith("."))


register_backend("prefect", PrefectCallCache)

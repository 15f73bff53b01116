"""Progress events, for displays that watch a run (the CLI's rich progress).

The gateway reports every call and the flows report stages and agents; whoever wants to show
progress subscribes. With no subscriber, emitting costs one empty loop.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Literal

from pydantic import BaseModel

Kind = Literal["call", "stage", "advance"]


class ProgressEvent(BaseModel):
    kind: Kind
    stage: str = ""
    total: int = 0
    advance: int = 0
    data: dict[str, Any] = {}


Listener = Callable[[ProgressEvent], None]
_lock = threading.Lock()
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call listener with every event from now on; returns the function that unsubscribes it."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def emit_call(record: Any) -> None:
    """Report one LLM call (a CallRecord, paid or answered from a cache)."""
    emit("call", cache_hit=record.cache_hit, tokens=record.prompt_tokens + record.completion_tokens, cost_usd=record.cost_usd)


def emit(kind: Kind, stage: str = "", *, total: int = 0, advance: int = 0, **data: Any) -> None:
    with _lock:
        listeners = list(_listeners)
    if listeners:
        event = ProgressEvent(kind=kind, stage=stage, total=total, advance=advance, data=data)
        for listener in listeners:
            listener(event)

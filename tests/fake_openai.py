"""A fake OpenAI-compatible HTTP server: the test double for every LLM test in this project.

Tests talk to it with the real ``openai`` client over real sockets, so everything between our code
and the wire (request building, retries, timeouts, Retry-After handling, Azure routing, response
parsing) is exercised exactly as in production; nothing in the client is patched.

The server is standard library only (``http.server``) and runs in a background thread on
127.0.0.1 with an OS-chosen port. Answers are deterministic: they derive from a sha256 of the
request's messages, so the same request always gets the same reply and cached or replayed runs can
be compared. When a request asks for structured output, the reply is generated from the JSON
Schema so that it validates; faults (HTTP errors, malformed or truncated replies, refusals, slow
answers) can be queued to test how the client copes with misbehaving providers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import urlsplit

Responder = Callable[[dict[str, Any]], str | dict[str, Any] | list[Any] | None]
"""Given a chat request body, the assistant's content (a dict/list is JSON-encoded; None = default)."""

MODEL_ID = "fake-model"
EMBEDDING_DIMENSIONS = 64
MALFORMED_CONTENT = '{"actions": [ {"type": "TALK", '
INVALID_CONTENT = '{"unexpected": true}'
ERROR_TEXT_CONTENT = "Error: upstream model overloaded, please retry"
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."

_CHAT_PATH = re.compile(r"^(?:/v1|/openai/deployments/(?P<deployment>[^/]+))/chat/completions$")
_EMBEDDINGS_PATH = re.compile(r"^(?:/v1|/openai/deployments/(?P<deployment>[^/]+))/embeddings$")
_MODELS_PATH = "/v1/models"

# Words mixed into generated strings, so that replies read like text and differ between prompts.
_VOCABULARY = (
    "amber", "breeze", "candle", "harbor", "lantern", "meadow", "orchard", "pebble",
    "quiet", "river", "saffron", "timber", "velvet", "willow", "market", "letter",
)  # fmt: skip

# HTTP status -> (error type, error code), as OpenAI's API reports them.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout", None),
    409: ("conflict", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "overloaded"),
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """An OpenAI-style error body, so the client maps it to the right exception with a message."""
    kind, code = _ERROR_KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


@dataclass(frozen=True)
class _Fault:
    """One queued misbehaviour, applied to the next chat request that reaches the model."""

    kind: Literal["fail", "slow", "malformed", "invalid", "refuse", "truncate", "error_text"]
    status: int = 500
    retry_after: float | None = None
    body: dict[str, Any] | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class _HttpReply:
    status: int
    payload: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


def _error_reply(status: int, message: str) -> _HttpReply:
    return _HttpReply(status, error_body(status, message))


def _message_text(message: Any) -> str:
    """The text of one chat message, whether its content is a string or a list of content parts."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message)
    return ""


def _token_estimate(text: str) -> int:
    """Rough token count (four characters a token), enough for usage accounting in tests."""
    return (len(text) + 3) // 4


def _embed(text: str) -> list[float]:
    """A unit vector from a hashed bag of lower-cased words: texts sharing words point the same way.

    Each word adds to four hashed dimensions, so one unlucky collision cannot make unrelated texts
    look alike; all components are non-negative, so the vector is never zero.
    """
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"\w+", text.lower()) or [""]:
        digest = hashlib.sha256(word.encode()).digest()
        for byte in digest[:4]:
            vector[byte % EMBEDDING_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


class _SchemaFaker:
    """Builds a JSON value that validates against a JSON Schema, deterministically from a seed.

    It covers what pydantic and OpenAI's strict mode emit (objects, arrays, tuples, enums, consts,
    $ref into $defs/definitions, anyOf/oneOf/allOf, length and range bounds, common string formats).
    ``pattern`` and ``multipleOf`` are not honoured. Every property is filled, optional or not, so
    tests see full documents; below ``_MAX_DEPTH`` only what is required is filled, arrays get their
    minimum and nullable branches are preferred, so recursive schemas (trees) terminate.
    """

    _MAX_DEPTH = 6

    def __init__(self, root: dict[str, Any], seed: bytes, prompt: str) -> None:
        self._root = root
        self._rng = random.Random(seed)
        self._words = [*_VOCABULARY, *re.findall(r"[A-Za-z]{3,}", prompt)[:20]]

    def value(self, schema: Any, depth: int = 0) -> Any:
        if not isinstance(schema, dict) or not schema:
            return self._text(0, None)  # `true` or `{}`: anything goes
        if "$ref" in schema:
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            return self.value({**self._resolve(schema["$ref"]), **siblings}, depth)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._rng.choice(schema["enum"])
        if "allOf" in schema:
            return self.value(self._merge([*schema["allOf"], {k: v for k, v in schema.items() if k != "allOf"}]), depth)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.value(self._pick(schema[key], depth), depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            kind = self._rng.choice(non_null) if non_null else "null"
        if kind is None:
            if "properties" in schema or "additionalProperties" in schema:
                kind = "object"
            elif "items" in schema or "prefixItems" in schema:
                kind = "array"
            elif "default" in schema:
                return schema["default"]
            else:
                kind = "string"
        return self._by_type(kind, schema, depth)

    def _by_type(self, kind: str, schema: dict[str, Any], depth: int) -> Any:
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "string":
            return self._string(schema)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self._rng.random() < 0.5
        return None

    def _resolve(self, ref: str) -> dict[str, Any]:
        """Follow a local JSON pointer such as ``#/$defs/Action``."""
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: Any = self._root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return cast(dict[str, Any], node)

    def _merge(self, schemas: list[Any]) -> dict[str, Any]:
        """Shallow allOf merge: later keys win, properties and required lists are combined."""
        merged: dict[str, Any] = {}
        for part in schemas:
            part = self._resolve(part["$ref"]) if isinstance(part, dict) and "$ref" in part else part
            if not isinstance(part, dict):
                continue
            properties = {**merged.get("properties", {}), **part.get("properties", {})}
            required = [*merged.get("required", []), *part.get("required", [])]
            merged.update(part)
            if properties:
                merged["properties"] = properties
            if required:
                merged["required"] = required
        return merged

    def _pick(self, options: list[Any], depth: int) -> Any:
        """One branch of an anyOf/oneOf: a non-null one, except deep down where null ends recursion."""
        nulls = [o for o in options if isinstance(o, dict) and o.get("type") == "null"]
        others = [o for o in options if o not in nulls]
        if nulls and (depth >= self._MAX_DEPTH or not others):
            return nulls[0]
        return self._rng.choice(others or options)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        result = {
            name: self.value(sub, depth + 1)
            for name, sub in properties.items()
            if depth < self._MAX_DEPTH or name in required
        }
        extra = schema.get("additionalProperties")
        if not properties and isinstance(extra, dict):
            for index in range(max(1, schema.get("minProperties", 0))):
                result[f"{self._word()}_{index}"] = self.value(extra, depth + 1)
        return result

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        prefix: list[Any] = schema.get("prefixItems", [])
        items = schema.get("items", {})
        count = max(schema.get("minItems", 0), len(prefix), 1 if depth < self._MAX_DEPTH else 0)
        if "maxItems" in schema:
            count = min(count, schema["maxItems"])
        return [self.value(prefix[i] if i < len(prefix) else items, depth + 1) for i in range(count)]

    def _string(self, schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        if fmt in ("date-time", "date", "time"):
            stamp = f"2024-{self._rng.randint(1, 12):02d}-{self._rng.randint(1, 28):02d}"
            clock = f"{self._rng.randint(0, 23):02d}:{self._rng.randint(0, 59):02d}:00"
            return {"date-time": f"{stamp}T{clock}Z", "date": stamp, "time": clock}[fmt]
        if fmt == "duration":
            return f"PT{self._rng.randint(1, 59)}M"
        if fmt == "uuid":
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        if fmt == "email":
            return f"{self._word().lower()}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{self._word().lower()}"
        return self._text(schema.get("minLength", 0), schema.get("maxLength"))

    def _text(self, min_length: int, max_length: int | None) -> str:
        text = " ".join(self._word() for _ in range(self._rng.randint(2, 5)))
        while len(text) < min_length:
            text += " " + self._word()
        return text if max_length is None else text[:max_length]

    def _word(self) -> str:
        return self._rng.choice(self._words)

    def _integer(self, schema: dict[str, Any]) -> int:
        low, high = self._bounds(schema)
        return self._rng.randint(math.ceil(low), math.floor(high))

    def _number(self, schema: dict[str, Any]) -> float:
        low, high = self._bounds(schema)
        exact = low + (high - low) * self._rng.uniform(0.1, 0.9)
        rounded = round(exact, 3)
        return rounded if low < rounded < high else exact

    @staticmethod
    def _bounds(schema: dict[str, Any]) -> tuple[float, float]:
        """The closed range to draw from; exclusive bounds are nudged inwards by one for integers."""
        integer = schema.get("type") == "integer"
        step = 1 if integer else 0
        low = schema.get("minimum", schema.get("exclusiveMinimum", -math.inf) + step)
        high = schema.get("maximum", schema.get("exclusiveMaximum", math.inf) - step)
        if math.isinf(low) and math.isinf(high):
            return 0, 100
        if math.isinf(low):
            return high - 100, high
        if math.isinf(high):
            return low, low + 100
        return low, high


def _default_content(body: dict[str, Any], digest: bytes) -> str:
    """The answer without a responder: schema-valid JSON, ``{"answer": ...}`` or plain text."""
    messages: list[Any] = body["messages"]
    last_user = _last_user_text(messages)
    text = f"Fake reply {digest.hex()[:4]}: {last_user[:40]}"
    response_format = body.get("response_format") or {}
    kind = response_format.get("type")
    schema = response_format["json_schema"]["schema"] if kind == "json_schema" else response_format.get("schema")
    if isinstance(schema, dict):
        return json.dumps(_SchemaFaker(schema, digest, last_user).value(schema))
    if kind == "json_object":
        return json.dumps({"answer": text})
    return text


class _Server(ThreadingHTTPServer):
    """The HTTP server, tracking open connections so that stop() can close kept-alive ones.

    Without that, a handler thread blocked on a kept-alive socket would go on answering a client
    after stop(), and a test could not simulate the server going away.
    """

    daemon_threads = True
    request_queue_size = 512  # the default backlog of 5 refuses bursts of concurrent connections

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the FakeOpenAI that owns the server; HTTP/1.1 so connections are reused."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        fake = self.server.fake
        path = urlsplit(self.path).path
        body = self._read_body()
        if match := _CHAT_PATH.match(path):
            fake._arrive()
            try:
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = fake._answer_chat(body, headers, match["deployment"])
            finally:
                # Leave before writing: a client that has the reply may send its next request at
                # once, which must not count as overlapping with this one.
                fake._depart()
            self._send(reply)
        elif match := _EMBEDDINGS_PATH.match(path):
            self._send(fake._answer_embeddings(body, match["deployment"]))
        else:
            self._send(_error_reply(404, f"Unknown request URL: POST {path}"))

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == _MODELS_PATH:
            model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "troupe-tests"}
            self._send(_HttpReply(200, {"object": "list", "data": [model]}))
        else:
            self._send(_error_reply(404, f"Unknown request URL: GET {path}"))

    def _read_body(self) -> bytes:
        """Read the whole body, so the connection is ready for the next request even on errors."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, reply: _HttpReply) -> None:
        data = json.dumps(reply.payload).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client gave up (timeout) or the server is stopping

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging, which would flood test output."""


class FakeOpenAI:
    """A fake OpenAI-compatible server with deterministic answers, fault injection and accounting.

    Use as ``with FakeOpenAI() as server: OpenAI(base_url=server.url, ...)``. The settings
    (``latency_s``, ``slots``, ``json_schema_supported``, ``responder``) may be changed at any time.
    ``responder`` runs on the server's handler threads, concurrently, so it must be thread-safe.
    """

    def __init__(self, *, latency_s: float = 0.0, slots: int | None = None, json_schema_supported: bool = True) -> None:
        self._settings = (latency_s, slots, json_schema_supported)
        self.latency_s = latency_s
        self.json_schema_supported = json_schema_supported
        self.responder: Responder | None = None
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._slots = slots
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._faults: deque[_Fault] = deque()
        self._in_flight = 0
        self._active = 0
        self._clear_records()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        if self._server is not None:
            raise RuntimeError("FakeOpenAI is already started")
        self._stopping.clear()
        self._server = _Server(self)
        # A short poll interval keeps stop() fast; the default 0.5 s would add up over many tests.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and close open connections; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        with self._lock:
            self._slot_freed.notify_all()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``: what AzureOpenAI takes as ``azure_endpoint``."""
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what OpenAI/AsyncOpenAI take as ``base_url``."""
        return f"{self.origin}/v1"

    # -- settings and records --------------------------------------------------------------------

    @property
    def slots(self) -> int | None:
        """At most this many chat requests are processed at once (None: no limit); others wait."""
        return self._slots

    @slots.setter
    def slots(self, value: int | None) -> None:
        with self._lock:
            self._slots = value
            self._slot_freed.notify_all()  # a larger limit admits waiting requests at once

    @property
    def calls(self) -> int:
        """Chat completion requests received, including rejected and fault-injected ones."""
        return self._calls

    @property
    def embedding_calls(self) -> int:
        return self._embedding_calls

    @property
    def peak_concurrency(self) -> int:
        """Most chat requests in flight at once, counted from arrival (before waiting for a slot)
        until the reply is ready to be written: how many the client had outstanding."""
        return self._peak_concurrency

    @property
    def peak_active(self) -> int:
        """Most chat requests being processed at once, inside the ``slots`` limit."""
        return self._peak_active

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat request body that parsed as a JSON object, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def headers(self) -> list[dict[str, str]]:
        """The HTTP headers (lower-cased names) of the requests in ``requests`` (a copy)."""
        with self._lock:
            return list(self._headers)

    def reset(self) -> None:
        """Forget counters, records, queued faults and the responder, and restore the settings
        given to the constructor, so one server can be shared by many tests.

        Peaks restart from the requests still in flight, so late replies cannot push counts below zero.
        """
        with self._lock:
            self._clear_records()
            self._faults.clear()
            self._peak_concurrency = self._in_flight
            self._peak_active = self._active
        self.latency_s, self.slots, self.json_schema_supported = self._settings
        self.responder = None

    def _clear_records(self) -> None:
        self._calls = 0
        self._embedding_calls = 0
        self._peak_concurrency = 0
        self._peak_active = 0
        self._requests: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []

    # -- fault injection -------------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, *, status: int = 500, retry_after: float | None = None, body: dict[str, Any] | None = None
    ) -> None:
        """Answer the next ``n`` chat requests with HTTP ``status`` and an OpenAI-style error body
        (or ``body`` as the whole JSON body), with a ``Retry-After`` header when ``retry_after`` is given."""
        self._queue(n, _Fault("fail", status=status, retry_after=retry_after, body=body))

    def malformed_next(self, n: int = 1) -> None:
        """200 OK whose content is cut-off JSON (``MALFORMED_CONTENT``)."""
        self._queue(n, _Fault("malformed"))

    def invalid_next(self, n: int = 1) -> None:
        """200 OK whose content is valid JSON that does not match the schema (``INVALID_CONTENT``)."""
        self._queue(n, _Fault("invalid"))

    def refuse_next(self, n: int = 1) -> None:
        """200 OK with finish_reason "content_filter", ``message.refusal`` set and content null."""
        self._queue(n, _Fault("refuse"))

    def truncate_next(self, n: int = 1) -> None:
        """200 OK with finish_reason "length" and the normal content cut in half."""
        self._queue(n, _Fault("truncate"))

    def slow_next(self, n: int = 1, seconds: float = 5.0) -> None:
        """Wait ``seconds`` (on top of ``latency_s``) before the normal answer, to trigger client timeouts."""
        self._queue(n, _Fault("slow", seconds=seconds))

    def error_text_next(self, n: int = 1) -> None:
        """200 OK, finish_reason "stop", whose content is a provider's error text
        (``ERROR_TEXT_CONTENT``), which a client must not accept as a structured answer."""
        self._queue(n, _Fault("error_text"))

    def _queue(self, n: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * n)

    # -- request handling (called on handler threads) --------------------------------------------

    def _arrive(self) -> None:
        with self._lock:
            self._calls += 1
            self._in_flight += 1
            self._peak_concurrency = max(self._peak_concurrency, self._in_flight)

    def _depart(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """Hold one of ``slots`` processing slots, like a server with N parallel sequences."""
        with self._lock:
            while self._slots is not None and self._active >= self._slots and not self._stopping.is_set():
                self._slot_freed.wait()
            self._active += 1
            self._peak_active = max(self._peak_active, self._active)
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                self._slot_freed.notify()

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _answer_chat(self, raw: bytes, headers: dict[str, str], deployment: str | None) -> _HttpReply:
        """Validate, record, apply a queued fault or answer.

        Requests rejected by validation (bad body, streaming, json_schema when unsupported) never
        reach the model, so they do not consume a queued fault: a client that falls back from
        json_schema to json_object after the 500 gets the fault on its fallback request.
        """
        try:
            body = json.loads(raw)
        except ValueError:
            return _error_reply(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error_reply(400, "The request body must be a JSON object.")
        with self._lock:
            self._requests.append(body)
            self._headers.append(headers)
        rejection = self._reject(body)
        if rejection is not None:
            return rejection
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        with self._slot():
            self._pause(self.latency_s)
            if fault is not None and fault.kind == "fail":
                return self._failure(fault)
            if fault is not None and fault.kind == "slow":
                self._pause(fault.seconds)
            try:
                return self._completion(body, deployment, fault)
            except Exception as exc:  # a broken responder or schema must fail the test visibly, not hang it
                return _error_reply(500, f"The fake server could not answer: {exc!r}")

    def _reject(self, body: dict[str, Any]) -> _HttpReply | None:
        if body.get("stream"):
            return _error_reply(400, "Streaming is not supported by the fake server.")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error_reply(400, "'messages' must be a non-empty array.")
        response_format = body.get("response_format")
        if response_format is None:
            return None
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "json_schema":
            spec = response_format.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
                return _error_reply(400, "response_format.json_schema.schema must be an object.")
            if not self.json_schema_supported:
                # What llama.cpp's server answers: it only takes {"type": "json_object", "schema": ...}.
                return _error_reply(500, 'response_format type "json_schema" is not supported')
            return None
        if kind in ("json_object", "text"):
            return None
        return _error_reply(400, f"Unsupported response_format: {json.dumps(response_format)}")

    @staticmethod
    def _failure(fault: _Fault) -> _HttpReply:
        headers = () if fault.retry_after is None else (("Retry-After", f"{fault.retry_after:g}"),)
        payload = fault.body
        if payload is None:
            payload = error_body(fault.status, f"Injected failure (HTTP {fault.status}).")
        return _HttpReply(fault.status, payload, headers)

    def _completion(self, body: dict[str, Any], deployment: str | None, fault: _Fault | None) -> _HttpReply:
        messages: list[Any] = body["messages"]
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()
        kind = fault.kind if fault is not None else None
        finish_reason, refusal = "stop", None
        content: str | None
        if kind == "malformed":
            content = MALFORMED_CONTENT
        elif kind == "invalid":
            content = INVALID_CONTENT
        elif kind == "error_text":
            content = ERROR_TEXT_CONTENT
        elif kind == "refuse":
            content, refusal, finish_reason = None, REFUSAL_TEXT, "content_filter"
        else:
            content = self._content(body, digest)
            if kind == "truncate":
                content, finish_reason = content[: len(content) // 2], "length"
        prompt_tokens = max(1, _token_estimate("".join(_message_text(m) for m in messages)))
        completion_tokens = _token_estimate(content or refusal or "")
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or deployment or MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return _HttpReply(200, payload)

    def _content(self, body: dict[str, Any], digest: bytes) -> str:
        responder = self.responder
        if responder is not None:
            produced = responder(body)
            if isinstance(produced, str):
                return produced
            if produced is not None:
                return json.dumps(produced)
        return _default_content(body, digest)

    def _answer_embeddings(self, raw: bytes, deployment: str | None) -> _HttpReply:
        with self._lock:
            self._embedding_calls += 1
        try:
            body = json.loads(raw)
        except ValueError:
            return _error_reply(400, "The request body is not valid JSON.")
        inputs = body.get("input") if isinstance(body, dict) else None
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error_reply(400, "'input' must be a string or a non-empty array of strings.")
        as_base64 = body.get("encoding_format") == "base64"  # openai-python 1.x asks for base64 by default
        data = []
        for index, text in enumerate(texts):
            vector = _embed(text)
            encoded: list[float] | str = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(max(1, _token_estimate(t)) for t in texts)
        payload = {
            "object": "list",
            "data": data,
            "model": body.get("model") or deployment or MODEL_ID,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return _HttpReply(200, payload)


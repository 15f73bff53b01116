"""The LLM gateway: every model call in troupe goes through here.

One async core on the official ``openai`` client serves OpenAI, Azure OpenAI, the embedded local
model and any OpenAI-compatible server (vLLM, Ollama, llama.cpp) through ``base_url``. On the way
it looks up the content-addressed call cache, shares one limiter per endpoint with every other
caller in the process, retries transient faults, validates structured replies (with one repair
round), and records tokens, latency and cost per call. Sync wrappers make it usable from plain
code and notebooks; the async methods serve code that runs many calls at once.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, Sequence, TypeVar

from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from ..cache import CallCache, cache_key, open_cache
from .. import progress
from ..config import Config, api_key, load_config
from . import loop
from .errors import (
    LLMAuthError,
    LLMBadRequest,
    LLMError,
    LLMRefusal,
    LLMStructuredOutputError,
    LLMTruncated,
    LLMUnavailable,
)
from .limiter import EndpointLimiter
from .structured import repair_message, resolve_mode, response_format, schema_instruction, schema_of, validate
from .types import CallRecord, ChatRequest, Message, RawResponse, Usage

if TYPE_CHECKING:
    import openai

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

logger = logging.getLogger("troupe.llm")


def _openai() -> Any:
    """The openai package, imported at the first call: ~0.5 s that a fully cached rerun never needs."""
    import openai

    return openai


def import_client_in_background() -> None:
    """Start importing openai and aiohttp (~0.6 s of CPU) on a daemon thread.

    The gateway imports them at its first call, on the LLM loop, where the import holds up every
    call queued behind it (in a pipeline, the first shards' calls). A process that knows it will
    call an endpoint can start the import while it waits on something else: ``troupe run`` does,
    while Prefect's server answers and the flow run is created.
    """

    def load() -> None:
        _openai()
        import aiohttp  # noqa: F401 - openai's aiohttp transport imports it when the first client opens

    threading.Thread(target=load, name="troupe-import-openai", daemon=True).start()


@lru_cache(maxsize=1)
def _transient() -> tuple[type[BaseException], ...]:
    openai = _openai()
    return (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError, openai.APIConnectionError)

_MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class ChatResult(Generic[T]):
    """A reply: its parsed value, raw text, the cache key of the call that produced it, and whether it was cached."""

    value: T
    text: str
    key: str
    cache_hit: bool


class Ledger:
    """The calls made through one gateway, for progress displays and the ``llm_calls`` dataset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)
        progress.emit_call(record)

    def totals(self) -> dict[str, float]:
        with self._lock:
            records = list(self.records)
        return {
            "calls": sum(1 for r in records if not r.cache_hit),
            "cache_hits": sum(1 for r in records if r.cache_hit),
            "prompt_tokens": sum(r.prompt_tokens for r in records if not r.cache_hit),
            "completion_tokens": sum(r.completion_tokens for r in records if not r.cache_hit),
            "cost_usd": sum(r.cost_usd for r in records),
        }


@dataclass
class _Endpoint:
    client: openai.AsyncOpenAI
    limiter: EndpointLimiter
    secret: str | None
    label: str
    # The embedded server: read timeouts scaled to each prompt and the queue, never below this.
    timeout_floor_s: float | None = None


# One client and limiter per endpoint, shared by every gateway in the process: limits are a
# property of the endpoint, not of whoever calls it. Only touched on the background loop.
_endpoints: dict[tuple[Any, ...], _Endpoint] = {}


def _fingerprint(secret: str | None) -> str:
    """Tells keys apart without keeping them in the endpoint table."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else ""


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        return min(float(header), _MAX_RETRY_AFTER_S) if header is not None else None
    except ValueError:
        return None


def _wait(state: RetryCallState) -> float:
    backoff = wait_random_exponential(multiplier=0.5, max=20)(state)
    exc = state.outcome.exception() if state.outcome else None
    hinted = _retry_after(exc) if exc is not None else None
    return max(hinted, backoff * 0.25) if hinted is not None else backoff


async def _create_chat(client: "openai.AsyncOpenAI", body: dict[str, Any], timeout: Any) -> dict[str, Any]:
    """``client.chat.completions.create(**body, timeout=timeout)`` without the request transform, as JSON.

    create() walks the body against its TypedDict annotations to rename aliased keys (~0.3 ms of
    CPU a call, most of it for the messages); troupe's bodies (model, messages, sampling settings,
    a response_format dict) have no aliased keys, so the same JSON goes out through the client's
    documented generic ``post`` with the options create() gives it (bearer auth, the timeout).
    The reply comes back as the decoded JSON (``cast_to=object``) rather than a ``ChatCompletion``
    built field by field (~0.2 ms a call), since troupe reads four fields of it.
    tests/test_gateway.py checks the bodies sent are those create() sends.
    """
    options: dict[str, Any] = {"security": {"bearer_auth": True}}
    if timeout is not _openai().NOT_GIVEN:
        options["timeout"] = timeout
    return await client.post("/chat/completions", body=body, cast_to=object, options=options)


async def _close(clients: list[Any]) -> None:
    await asyncio.wait([asyncio.ensure_future(client.close()) for client in clients], timeout=1)


@atexit.register
def _close_clients() -> None:
    """At exit, close the endpoints' HTTP clients on the LLM loop: aiohttp warns of sessions left open."""
    clients = [endpoint.client for endpoint in _endpoints.values()]
    background = loop.background_loop() if clients else None
    if background is None or not background.is_running():
        return
    try:
        asyncio.run_coroutine_threadsafe(_close(clients), background).result(timeout=2)
    except Exception:  # exiting anyway: a client that will not close is no reason to hang or fail
        pass


def _remote_http() -> Any:
    """The HTTP client under openai's for a remote endpoint: openai's aiohttp transport.

    A pipeline's process is bound by client CPU per call (docs/performance.md, "Pipelines"):
    aiohttp takes ~0.5 ms less a call than httpx's pool. It honours proxy settings from the
    environment as httpx does. The embedded model keeps httpx: there a server that dies mid-request
    must surface as a connection error, which troupe's crash diagnosis (``LLMServerDied``) keys on,
    and aiohttp reports it as a timeout; its calls take seconds, so the client's CPU does not count.
    """
    return _openai().DefaultAioHttpClient()


def _resample_purpose(purpose: str, resample: int) -> str:
    """The purpose recorded in ``llm_calls`` for a resample: ``turn``, ``turn:resample1``, ..."""
    if not resample:
        return purpose
    return f"{purpose}:resample{resample}" if purpose else f"resample{resample}"


class LLMGateway:
    """Calls the configured LLM endpoint through the cache, the limiter and retries."""

    def __init__(self, config: Config | None = None, *, cache: CallCache | None = None) -> None:
        self.config = config or load_config()
        logging.getLogger("troupe").setLevel(self.config.logging.level)
        llm = self.config.llm
        cache_config = self.config.cache
        self.cache = cache or open_cache(cache_config.enabled, cache_config.backend, self.config.cache_path)
        self.ledger = Ledger()
        self.mode = resolve_mode(llm.structured_output, llm.api_type)
        self._in_flight: dict[str, asyncio.Future[RawResponse]] = {}

    # ----- public sync API (notebooks, scripts) -----

    def complete(self, messages: Sequence[Message], **params: Any) -> ChatResult[str]:
        """A text reply to messages."""
        return loop.run_sync(self._acomplete(list(messages), **params))

    def structured(self, messages: Sequence[Message], schema: type[M], **params: Any) -> ChatResult[M]:
        """A reply parsed into schema (a pydantic model), repaired once if invalid."""
        return loop.run_sync(self._astructured(list(messages), schema, **params))

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return loop.run_sync(self._aembed(list(texts)))

    # ----- public async API -----

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> ChatResult[str]:
        return await loop.run_async(self._acomplete(list(messages), **params))

    async def astructured(self, messages: Sequence[Message], schema: type[M], **params: Any) -> ChatResult[M]:
        return await loop.run_async(self._astructured(list(messages), schema, **params))

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        return await loop.run_async(self._aembed(list(texts)))

    # ----- core (runs on the background loop) -----

    def _request(self, messages: list[Message], **params: Any) -> ChatRequest:
        llm = self.config.llm
        return ChatRequest(
            model=params.pop("model", None) or llm.model,
            messages=messages,
            temperature=params.pop("temperature", llm.temperature),
            max_tokens=params.pop("max_tokens", llm.max_tokens),
            seed=params.pop("seed", llm.seed),
            sample=params.pop("sample", 0),
            **params,
        )

    async def _acomplete(self, messages: list[Message], purpose: str = "", **params: Any) -> ChatResult[str]:
        request = self._request(messages, **params)
        raw, key, hit = await self._araw(request, purpose)
        return ChatResult(raw.text, raw.text, key, hit)

    async def _astructured(
        self, messages: list[Message], schema: type[M], purpose: str = "", **params: Any
    ) -> ChatResult[M]:
        """A reply parsed into schema: one repair round, then up to ``[llm] max_resamples`` fresh samples.

        A resample is the same request with the next ``sample`` index (a new cache key and seed), so
        one malformed or truncated reply costs a few extra calls instead of the caller's whole task.
        Unusable replies stay cached when a later sample succeeds (a rerun replays the same path for
        free); when every sample fails, all of them are forgotten so a rerun asks again.
        """
        json_schema = schema_of(schema)
        if self.mode == "json_object":
            messages = [*messages, {"role": "system", "content": schema_instruction(json_schema)}]
        request = self._request(messages, response_schema=json_schema, schema_name=schema.__name__, **params)
        resamples = self.config.llm.max_resamples
        unusable: list[str] = []
        failure: LLMError | None = None
        for resample in range(resamples + 1):
            sample = request.model_copy(update={"sample": request.sample + resample}) if resample else request
            label = _resample_purpose(purpose, resample)
            try:
                outcome = await self._sample_structured(sample, schema, label, unusable)
            except LLMTruncated as exc:  # cut off at max_tokens: as unusable as malformed JSON
                failure = exc
                continue
            if isinstance(outcome, ChatResult):
                return outcome
            failure = LLMStructuredOutputError(
                f"{schema.__name__}: the model's reply did not match the schema after one repair round "
                f"and {resamples} resamples ({outcome}); use a stronger model or set [llm] structured_output "
                "to a mode the server supports"
            )
        for key in unusable:
            self.cache.delete(key)
        assert failure is not None
        raise failure

    async def _sample_structured(
        self, request: ChatRequest, schema: type[M], purpose: str, unusable: list[str]
    ) -> ChatResult[M] | str:
        """One sample and its repair round: the parsed reply, or the validation problems of the repair."""
        raw, key, hit = await self._araw(request, purpose)
        parsed, problems = validate(schema, raw.text)
        if parsed is not None:
            return ChatResult(parsed, raw.text, key, hit)  # type: ignore[arg-type]
        unusable.append(key)
        repair = request.model_copy(
            update={
                "messages": [
                    *request.messages,
                    {"role": "assistant", "content": raw.text},
                    {"role": "user", "content": repair_message(problems or "")},
                ]
            }
        )
        raw2, key2, hit2 = await self._araw(repair, purpose + ":repair" if purpose else "repair")
        parsed, problems2 = validate(schema, raw2.text)
        if parsed is not None:
            return ChatResult(parsed, raw2.text, key2, hit2)  # type: ignore[arg-type]
        unusable.append(key2)
        return problems2 or "not valid"

    async def _araw(self, request: ChatRequest, purpose: str) -> tuple[RawResponse, str, bool]:
        """One raw reply, from the cache, an identical call already in flight, or the endpoint."""
        key = cache_key(request.model_dump(mode="json"))
        started = time.perf_counter()
        cached = self.cache.get(key)
        if cached is not None:
            raw = RawResponse.model_validate(cached)
            self._record(key, request, raw, started, cache_hit=True, attempts=0, purpose=purpose)
            return raw, key, True
        pending = self._in_flight.get(key)
        if pending is not None:  # single flight: an identical request is never paid twice
            raw = await asyncio.shield(pending)
            self._record(key, request, raw, started, cache_hit=True, attempts=0, purpose=purpose)
            return raw, key, True
        future: asyncio.Future[RawResponse] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            raw, attempts, fault = await self._call(request)
            if fault is not None:  # a reply paid for but unusable (cut off, refused, empty): accounted, never cached
                self._record(key, request, raw, started, cache_hit=False, attempts=attempts, purpose=purpose)
                raise fault
            self.cache.put(key, raw.model_dump(mode="json"))
            future.set_result(raw)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._in_flight[key]
        self._record(key, request, raw, started, cache_hit=False, attempts=attempts, purpose=purpose)
        return raw, key, False

    def _record(
        self, key: str, request: ChatRequest, raw: RawResponse, started: float, *, cache_hit: bool, attempts: int, purpose: str
    ) -> None:
        llm = self.config.llm
        usage = raw.usage
        free = cache_hit or llm.api_type == "local"  # a cached reply costs nothing; the embedded model is free
        cost = 0.0 if free else (
            usage.prompt_tokens * llm.price_prompt_per_1m + usage.completion_tokens * llm.price_completion_per_1m
        ) / 1_000_000
        prompts = self.config.datasets.store_prompts  # the request holds no endpoint and no key (ChatRequest)
        self.ledger.add(
            CallRecord(
                messages=json.dumps(request.messages, ensure_ascii=False) if prompts else None,
                completion=raw.text if prompts else None,
                key=key,
                model=request.model,
                purpose=purpose,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                latency_s=time.perf_counter() - started,
                cost_usd=cost,
                cache_hit=cache_hit,
                finish_reason=raw.finish_reason,
                attempts=attempts,
            )
        )

    async def _endpoint(self) -> _Endpoint:
        llm = self.config.llm
        # Gateways configured alike share one client and limiter; different limits get their own.
        identity = (
            llm.api_type, llm.base_url, llm.api_version, self.config.local.host, self.config.local.port,
            llm.max_concurrency, llm.rpm, llm.tpm, llm.timeout_s, _fingerprint(api_key(llm)),
        )
        endpoint = _endpoints.get(identity)
        if endpoint is None:
            endpoint = await self._open_endpoint()
            endpoint = _endpoints.setdefault(identity, endpoint)
        return endpoint

    async def _open_endpoint(self) -> _Endpoint:
        openai = _openai()
        llm = self.config.llm
        limiter = EndpointLimiter(llm.max_concurrency, llm.rpm, llm.tpm)
        common: dict[str, Any] = {"timeout": llm.timeout_s, "max_retries": 0}
        secret = api_key(llm)
        if llm.api_type == "local":
            from ..local_model import CHARS_PER_TOKEN, ensure_server, log_path, read_timeout

            base_url = llm.base_url or await asyncio.to_thread(ensure_server, self.config.local)
            # Requests without a timeout of their own (embeddings) may queue behind every chat request.
            longest = read_timeout(
                llm.timeout_s, int(self.config.local.n_ctx * CHARS_PER_TOKEN), llm.max_tokens, llm.max_concurrency
            )
            client = openai.AsyncOpenAI(base_url=base_url, api_key="local", **{**common, "timeout": longest})
            log = "" if llm.base_url else f" (log {log_path(self.config.local)})"
            return _Endpoint(client, limiter, None, f"embedded model at {base_url}{log}", timeout_floor_s=llm.timeout_s)
        if llm.api_type == "azure":
            endpoint = llm.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT", "")
            if not endpoint or not secret:
                raise LLMAuthError(
                    "api_type = azure needs AZURE_OPENAI_ENDPOINT (or [llm] base_url) and AZURE_OPENAI_KEY "
                    "in the environment; export them, or set [llm] api_type = local"
                )
            client = openai.AsyncAzureOpenAI(
                azure_endpoint=endpoint, api_key=secret, api_version=llm.api_version, http_client=_remote_http(), **common
            )
            return _Endpoint(client, limiter, secret, f"Azure OpenAI at {endpoint}")
        if not secret and not llm.base_url:
            raise LLMAuthError(
                "api_type = openai needs OPENAI_API_KEY in the environment; export it, point [llm] base_url "
                "at an OpenAI-compatible server, or set [llm] api_type = local"
            )
        client = openai.AsyncOpenAI(base_url=llm.base_url or None, api_key=secret or "unused", http_client=_remote_http(), **common)
        return _Endpoint(client, limiter, secret, f"OpenAI-compatible endpoint at {client.base_url}")

    def _retrying(self) -> AsyncRetrying:
        """Exponential back-off with jitter on transient faults, honouring Retry-After."""
        attempts = self.config.llm.max_attempts

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            sleep = state.next_action.sleep if state.next_action else 0.0
            logger.warning(
                "LLM call failed (%s); retrying in %.1f s, attempt %d of %d",
                type(exc).__name__ if exc else "?", sleep, state.attempt_number + 1, attempts,
            )

        return AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=_wait,
            retry=retry_if_exception(lambda e: isinstance(e, _transient())),
            before_sleep=log_retry,
            reraise=True,
        )

    async def _call(self, request: ChatRequest) -> tuple[RawResponse, int, LLMError | None]:
        """Call the endpoint with retries on transient faults: the reply, the attempts and what makes it unusable.

        A reply that came back but cannot be used (cut off, refused, empty) is returned with its
        typed error rather than raised, so that its tokens are accounted before the error surfaces.
        Other faults raise a typed error.
        """
        openai = _openai()
        endpoint = await self._endpoint()
        body: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed + request.sample,
        }
        if request.response_schema is not None:
            body["response_format"] = response_format(self.mode, request.schema_name or "reply", request.response_schema)
        estimate = len(json.dumps(request.messages)) // 4 + request.max_tokens
        attempts = 0
        try:
            async for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    async with endpoint.limiter.slot(estimate):
                        timeout = self._read_timeout(request, endpoint)
                        try:
                            completion = await _create_chat(endpoint.client, body, timeout)
                        except openai.RateLimitError:
                            await endpoint.limiter.on_rate_limited()
                            raise
                        except openai.APITimeoutError:
                            if endpoint.timeout_floor_s is not None:
                                # Busy, not gone: the wait was already generous, and the server still
                                # computes the abandoned request, so a retry would only queue more.
                                raise LLMUnavailable(
                                    f"{endpoint.label}: no reply within {timeout:.0f} s with "
                                    f"{endpoint.limiter.active} requests in flight; the server runs but the "
                                    "machine is too busy: run less at once, or raise [llm] timeout_s"
                                ) from None
                            raise
                        except openai.APIConnectionError:
                            await self._revive_local_server()
                            raise
                    await endpoint.limiter.on_success()
        except _transient() as exc:
            raise LLMUnavailable(
                f"{endpoint.label}: {self._describe(exc, endpoint)} persisted through {attempts} attempts; "
                "retry later, or raise [llm] max_attempts / timeout_s"
            ) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise LLMAuthError(
                f"{endpoint.label}: {self._describe(exc, endpoint)}; check the API key in the environment"
            ) from None
        except openai.APIStatusError as exc:
            raise LLMBadRequest(
                f"{endpoint.label}: {self._describe(exc, endpoint)}; check [llm] model and the request parameters"
            ) from None
        raw, fault = self._raw(completion, endpoint, request.max_tokens)
        endpoint.limiter.settle_tokens(estimate, raw.usage.prompt_tokens + raw.usage.completion_tokens)
        return raw, attempts, fault

    @staticmethod
    def _read_timeout(request: ChatRequest, endpoint: _Endpoint) -> float | openai.NotGiven:
        """The embedded server's read timeout for this request (others keep the client's [llm] timeout_s)."""
        if endpoint.timeout_floor_s is None:
            return _openai().NOT_GIVEN
        from ..local_model import read_timeout

        prompt_chars = len(json.dumps(request.messages))
        return read_timeout(endpoint.timeout_floor_s, prompt_chars, request.max_tokens, endpoint.limiter.active)

    async def _revive_local_server(self) -> None:
        """A connection to the embedded server failed: find out why before any retry.

        If the server this process started has died, ensure_server raises LLMServerDied (its exit
        status, log tail, log file and fix) and the call stops at once: a crash does not mend by
        retrying. If nothing answers (the process that started it exited), it starts a new one. A
        busy server is left alone.
        """
        if self.config.llm.api_type == "local" and not self.config.llm.base_url:
            from ..local_model import ensure_server

            await asyncio.to_thread(lambda: ensure_server(self.config.local, grace_s=1.0))

    def _raw(self, completion: Any, endpoint: _Endpoint, max_tokens: int) -> tuple[RawResponse, LLMError | None]:
        """The reply's text, finish reason and usage from the endpoint's decoded JSON, and what makes it unusable."""
        if isinstance(completion, str):  # JSON sent as another content type comes back as text
            try:
                completion = json.loads(completion)
            except ValueError:
                pass
        choices = completion.get("choices") if isinstance(completion, dict) else None
        if not choices or not isinstance(choices[0], dict):
            raise LLMUnavailable(f"{endpoint.label}: the reply had no choices; retry later")
        choice = choices[0]
        message = choice.get("message") or {}
        content = message.get("content")
        usage = completion.get("usage") or {}
        raw = RawResponse(
            text=content if isinstance(content, str) else "",
            finish_reason=choice.get("finish_reason") or "stop",
            usage=Usage(prompt_tokens=usage.get("prompt_tokens") or 0, completion_tokens=usage.get("completion_tokens") or 0),
            model=completion.get("model") or "",
        )
        fault: LLMError | None = None
        if message.get("refusal") or raw.finish_reason == "content_filter":
            fault = LLMRefusal(
                f"{endpoint.label}: the model refused ({message.get('refusal') or 'content filter'}); rephrase the stimulus"
            )
        elif raw.finish_reason == "length":
            fault = LLMTruncated(f"{endpoint.label}: the reply was cut off at max_tokens={max_tokens}; raise [llm] max_tokens")
        elif not raw.text:
            fault = LLMError(f"{endpoint.label}: the reply was empty; retry, or use another model")
        return raw, fault

    @staticmethod
    def _describe(exc: BaseException, endpoint: _Endpoint) -> str:
        """The error in one line, with the API key scrubbed (providers echo parts of it back)."""
        status = getattr(exc, "status_code", None)
        text = str(getattr(exc, "message", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
        if endpoint.secret:
            text = text.replace(endpoint.secret, "***")
        return f"HTTP {status}: {text}" if status else f"{type(exc).__name__}: {text}"

    async def _aembed(self, texts: list[str]) -> list[list[float]]:
        """Embeddings, cached per text by content; misses go out in one request."""
        model = self.config.llm.embedding_model
        keys = [cache_key({"embedding_model": model, "input": text}) for text in texts]
        vectors: dict[str, list[float]] = {}
        for key in set(keys):
            hit = self.cache.get(key)
            if hit is not None:
                vectors[key] = hit["embedding"]
        missing = list(dict.fromkeys(k for k in keys if k not in vectors))
        if missing:
            endpoint = await self._endpoint()
            inputs = [texts[keys.index(k)] for k in missing]
            try:
                async for attempt in self._retrying():
                    with attempt:
                        async with endpoint.limiter.slot(sum(len(t) for t in inputs) // 4):
                            reply = await endpoint.client.embeddings.create(model=model, input=inputs)
            except _openai().APIError as exc:
                raise LLMUnavailable(f"{endpoint.label}: embeddings failed ({self._describe(exc, endpoint)})") from None
            for key, item in zip(missing, sorted(reply.data, key=lambda d: d.index)):
                vectors[key] = _pooled(item.embedding)
                self.cache.put(key, {"embedding": vectors[key]})
        return [vectors[k] for k in keys]


def _pooled(embedding: Any) -> list[float]:
    """One vector per text: llama.cpp's server without pooling returns one per token, so average them."""
    if embedding and isinstance(embedding[0], list):
        width = len(embedding[0])
        return [sum(row[i] for row in embedding) / len(embedding) for i in range(width)]
    return [float(x) for x in embedding]


_default: LLMGateway | None = None
_default_lock = threading.Lock()


def default_gateway() -> LLMGateway:
    """The gateway agents use when none is given, built from the configuration on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = LLMGateway()
        return _default


def set_default_gateway(gateway: LLMGateway | None) -> None:
    """Make gateway the default (None: rebuild from the configuration on next use)."""
    global _default
    with _default_lock:
        _default = gateway

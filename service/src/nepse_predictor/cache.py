"""Optional Redis: a prediction cache and an append-only prediction log.

- Cache: ``nepse:cache:<model version>:<digest of the float32 rows>`` -> the float32
  probabilities, with a TTL. A hit skips the model; the key holds the model version, so a new
  version never answers from an old one's entries.
- Log: one entry per prediction request in a capped stream (``XADD ... MAXLEN ~ N``) with
  request id, track, model version, route, rows, output and latency; `shadow-report` pairs
  the entries of two tracks by request id. Entries are queued in memory and written in
  pipelined batches by a background task, so logging adds no round trip to a request.
- Comparison: each entry is also kept for a short time under its request id, and a track other
  than the baseline pairs its predictions with the baseline's as they arrive
  (``nepse_shadow_*`` metrics).

Redis being down or slow never fails a request: every call has short socket timeouts, and
after a failure Redis is skipped for a back-off period (the cache is bypassed, log entries are
dropped and counted), with one warning when it goes away and one line when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from typing import Any

import numpy as np
import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from nepse_predictor.log_redis import redact_url
from nepse_predictor.metrics import Metrics

log = logging.getLogger("nepse_predictor.cache")

CACHE_PREFIX = "nepse:cache:"
BY_ID_PREFIX = "nepse:byid:"
BY_ID_TTL_SECONDS = 600
FLUSH_INTERVAL = 0.05
MAX_QUEUE = 50_000
MAX_BATCH = 500
PAIR_WAIT_SECONDS = 2.0
FAILURES = (RedisError, OSError, asyncio.TimeoutError)


def cache_key(version: str, rows: np.ndarray, kind: str = "rows") -> str:
    digest = hashlib.blake2b(rows.tobytes(), digest_size=16)
    digest.update(repr(rows.shape).encode())
    return f"{CACHE_PREFIX}{version}:{kind}:{digest.hexdigest()}"


class RedisSink:
    def __init__(
        self,
        url: str,
        metrics: Metrics,
        *,
        track: str,
        timeout_ms: int = 100,
        stream: str = "nepse:predictions",
        maxlen: int = 100_000,
        ttl_seconds: int = 3600,
        baseline_track: str = "stable",
    ) -> None:
        self.url = url
        self.metrics = metrics
        self.track = track
        self.stream = stream
        self.maxlen = maxlen
        self.ttl_seconds = ttl_seconds
        self.baseline_track = baseline_track
        self.threshold = 0.5
        timeout = timeout_ms / 1000
        self.client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            single_connection_client=False,
        )
        self._down_until = 0.0
        self._backoff = 0.5
        self._down = False
        self._queue: deque[tuple[str, Any]] = deque()
        self._pending_pairs: deque[tuple[float, str, list[float]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # --- health -------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return not self._down or time.monotonic() >= self._down_until

    @property
    def cache_enabled(self) -> bool:
        return self.ttl_seconds > 0

    def _failed(self, action: str, exc: BaseException) -> None:
        self.metrics.redis_errors.inc()
        self._down_until = time.monotonic() + self._backoff
        if not self._down:
            log.warning(
                "Redis unavailable; serving without the prediction cache and log until it "
                "answers again",
                extra={
                    "redis": redact_url(self.url),
                    "action": action,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
        else:
            self._backoff = min(self._backoff * 2, 5.0)
        self._down = True

    def _succeeded(self) -> None:
        if self._down:
            log.info(
                "Redis answers again; prediction cache and log resumed",
                extra={"redis": redact_url(self.url)},
            )
        self._down = False
        self._backoff = 0.5

    async def start(self) -> None:
        try:
            await self.client.ping()
        except FAILURES as exc:
            self._failed("ping", exc)
        else:
            log.info("Redis connected", extra={"redis": redact_url(self.url)})
        self._task = asyncio.get_running_loop().create_task(self._flusher())

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=2.0)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        with contextlib.suppress(*FAILURES):
            await self.client.aclose()

    # --- cache --------------------------------------------------------------------------

    async def get(self, key: str, rows: int) -> np.ndarray | None:
        if not self.available:
            self.metrics.cache_event["bypass"].inc()
            return None
        try:
            value = await self.client.get(key)
        except FAILURES as exc:
            self._failed("cache get", exc)
            self.metrics.cache_event["bypass"].inc()
            return None
        self._succeeded()
        # The client leaves decode_responses off: a value is bytes, or None when missing.
        if not isinstance(value, bytes) or len(value) != 4 * rows:
            self.metrics.cache_event["miss"].inc()
            return None
        self.metrics.cache_event["hit"].inc()
        return np.frombuffer(value, dtype=np.float32)

    def put(self, key: str, probabilities: np.ndarray) -> None:
        self._enqueue(("set", (key, np.ascontiguousarray(probabilities, np.float32).tobytes())))

    # --- prediction log -----------------------------------------------------------------

    def log_prediction(
        self,
        request_id: str,
        model_version: str,
        route: str,
        probabilities: np.ndarray,
        latency_ms: float,
        features: list[list[float]] | None = None,
    ) -> None:
        entry = {
            "request_id": request_id,
            "track": self.track,
            "model_version": model_version,
            "route": route,
            "rows": str(len(probabilities)),
            "probability": orjson.dumps(probabilities, option=orjson.OPT_SERIALIZE_NUMPY),
            "latency_ms": f"{latency_ms:.3f}",
            "ts": f"{time.time():.3f}",
        }
        if features is not None:
            entry["features"] = orjson.dumps(features)
        self._enqueue(("log", entry))

    def _enqueue(self, item: tuple[str, Any]) -> None:
        if len(self._queue) >= MAX_QUEUE:
            self.metrics.cache_event["log_dropped"].inc()
            return
        self._queue.append(item)
        if len(self._queue) >= MAX_BATCH:
            self._wakeup.set()

    async def _flusher(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=FLUSH_INTERVAL)
            self._wakeup.clear()
            try:
                while self._queue:
                    await self._flush_once()
                    if not self.available:
                        break
                if self._pending_pairs:
                    await self._compare_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not end logging for the process
                log.exception("prediction log flush failed")
            if self._closing:
                return

    async def _flush_once(self) -> None:
        batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
        if not self.available:
            self._count_dropped(batch)
            return
        pipe = self.client.pipeline(transaction=False)
        logged = 0
        for kind, value in batch:
            if kind == "set":
                pipe.set(value[0], value[1], ex=self.ttl_seconds)
            else:
                pipe.xadd(self.stream, value, maxlen=self.maxlen, approximate=True)
                key = f"{BY_ID_PREFIX}{value['request_id']}"
                pipe.hset(key, self.track, value["probability"])
                pipe.expire(key, BY_ID_TTL_SECONDS)
                logged += 1
        try:
            await pipe.execute()
        except FAILURES as exc:
            self._failed("prediction log write", exc)
            self._count_dropped(batch)
            return
        self._succeeded()
        if logged:
            self.metrics.cache_event["log_written"].inc(logged)
        stores = len(batch) - logged
        if stores:
            self.metrics.cache_event["store"].inc(stores)
        if self.track != self.baseline_track:
            now = time.monotonic()
            for kind, value in batch:
                if kind == "log" and len(self._pending_pairs) < MAX_QUEUE:
                    self._pending_pairs.append(
                        (now, value["request_id"], orjson.loads(value["probability"]))
                    )

    def _count_dropped(self, batch: list[tuple[str, Any]]) -> None:
        dropped = sum(1 for kind, _ in batch if kind == "log")
        if dropped:
            self.metrics.cache_event["log_dropped"].inc(dropped)

    async def _compare_pending(self) -> None:
        """Pair this track's logged predictions with the baseline's, once those arrive."""
        if not self.available:
            return
        batch = [self._pending_pairs[i] for i in range(min(MAX_BATCH, len(self._pending_pairs)))]
        pipe = self.client.pipeline(transaction=False)
        for _, request_id, _ in batch:
            pipe.hget(f"{BY_ID_PREFIX}{request_id}", self.baseline_track)
        try:
            answers = await pipe.execute()
        except FAILURES as exc:
            self._failed("shadow comparison", exc)
            return
        now = time.monotonic()
        baseline = self.baseline_track
        settled: set[str] = set()
        for (logged_at, request_id, ours), theirs in zip(batch, answers, strict=True):
            if theirs is None and now - logged_at < PAIR_WAIT_SECONDS:
                continue  # the baseline may not have logged it yet
            settled.add(request_id)
            other = orjson.loads(theirs) if theirs is not None else None
            if other is None or len(other) != len(ours):
                self.metrics.shadow_comparisons.labels(baseline, "unpaired").inc()
                continue
            threshold = self.threshold
            for p, q in zip(ours, other, strict=True):
                result = "agree" if (p >= threshold) == (q >= threshold) else "disagree"
                self.metrics.shadow_comparisons.labels(baseline, result).inc()
                self.metrics.shadow_abs_diff.labels(baseline).observe(abs(p - q))
        if settled:
            self._pending_pairs = deque(p for p in self._pending_pairs if p[1] not in settled)

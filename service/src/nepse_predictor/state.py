"""What one server process holds: settings, the loaded model (or why there is none), metrics,
the optional Redis sink, and the shared prediction step every endpoint uses."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np
import orjson

from nepse_predictor.artifacts import VersionChoice, choose_model_version
from nepse_predictor.config import Settings
from nepse_predictor.errors import ModelIntegrityError
from nepse_predictor.heavy_work import HeavyWork
from nepse_predictor.input_error import InputError
from nepse_predictor.logging_setup import AccessLog
from nepse_predictor.metrics import Metrics
from nepse_predictor.model import LoadedModel, load_model, resolve_backend

if TYPE_CHECKING:
    from nepse_predictor.cache import RedisSink  # redis is imported only when used

T = TypeVar("T")

log = logging.getLogger("nepse_predictor.server")

# Above these sizes the work leaves the event loop, so one large batch never stalls the small
# requests queued behind it: a body's parsing goes to a worker process (`heavy_work`; it holds
# the GIL, about 1.5 ms per 256 KiB of tensor data), rendering many rows by hand to a thread;
# predicting goes to a thread above the model's `thread_rows`. Below them the hop would cost
# more than it saves.
OFFLOAD_BYTES = 256 * 1024
OFFLOAD_ROWS = 256


class ModelNotReady(Exception):
    """A prediction was asked for while no verified model is loaded (503)."""


@dataclass(slots=True)
class Incoming:
    """What a prediction handler gets of a request."""

    body: bytes
    request_id: str
    # Open Inference Protocol: the path's model name and version, and the binary tensor
    # extension's Inference-Header-Content-Length (None: the whole body is JSON).
    model_name: str | None = None
    model_version: str | None = None
    header_length: int | None = None


class Reply(NamedTuple):
    status: int
    body: bytes
    # Headers besides the identifying ones; a JSON content type when none is given.
    headers: tuple[tuple[bytes, bytes], ...] = ()


# handler(state, request, log_fields) -> reply
Handler = Callable[["ServingState", Incoming, dict[str, Any]], Awaitable[Reply]]


class ServingState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.track = settings.track
        self.metrics = Metrics()
        self.access_log = AccessLog(settings.access_log)
        self.model: LoadedModel | None = None
        self.model_error: str = "the model has not been loaded yet"
        self.sink: RedisSink | None = None  # when NEPSE_REDIS_URL is set
        self.version_choice: VersionChoice | None = None  # when serving from a models root
        self.track_header = settings.track.encode()
        self.version_header = b"none"
        self.metrics.set_model(None, self.track, resolve_backend(settings.backend))
        self.heavy = HeavyWork(settings.heavy_workers)

    async def parse_body(self, parse: Callable[..., T], body: bytes, *args: Any) -> T:
        """`parse(body, *args)`, in a worker process when the body is large."""
        if len(body) > OFFLOAD_BYTES:
            return await self.heavy.run(parse, body, *args)
        return parse(body, *args)

    # --- lifecycle ----------------------------------------------------------------------

    def _choose_directory(self) -> Path | None:
        """NEPSE_MODEL_DIR, else the version chosen under NEPSE_MODELS_ROOT (logged)."""
        settings = self.settings
        if settings.model_dir is not None or settings.models_root is None:
            return settings.model_dir
        choice = choose_model_version(settings.models_root, settings.model_fallback)
        self.version_choice = choice
        for directory, reason in choice.skipped:
            log.warning(
                "model version %s skipped (NEPSE_MODEL_FALLBACK): %s",
                directory.name,
                reason,
                extra={"skipped_version": directory.name, "models_root": str(choice.root)},
            )
        if choice.chosen is not None and choice.chosen != choice.newest:
            log.warning(
                "serving %s, not the newest version %s (NEPSE_MODEL_FALLBACK)",
                choice.chosen.name,
                choice.newest.name if choice.newest else None,
                extra={"models_root": str(choice.root)},
            )
        return choice.chosen

    def load(self) -> None:
        """Load and verify the model; on failure stay up, not ready, and say why."""
        started = time.perf_counter()
        self.version_choice = None
        directory = self._choose_directory()
        choice = self.version_choice
        if directory is None and choice is not None:
            if choice.skipped:
                reasons = "; ".join(reason for _, reason in choice.skipped)
                self._not_ready(f"{choice.root}: no model version verifies ({reasons})")
            else:
                self._not_ready(
                    f"{choice.root}: holds no model version; train one into it "
                    f"(nepse-predictor train --out {choice.root}) or set NEPSE_MODEL_DIR to a "
                    "models/<version> directory"
                )
            return
        try:
            model = load_model(directory, self.settings.backend)
        except ModelIntegrityError as exc:
            self._not_ready(str(exc))
            return
        except Exception as exc:  # a broken file can make a backend raise anything
            self._not_ready(f"{directory}: cannot load the model: {type(exc).__name__}: {exc}")
            return
        self.model = model
        self.model_error = ""
        self.version_header = model.version.encode("ascii", "replace")
        newest = choice is None or choice.chosen == choice.newest
        self.metrics.set_model(model.version, self.track, model.backend, newest)
        log.info(
            "model loaded",
            extra={
                "model_version": model.version,
                "backend": model.backend,
                "model_dir": str(model.directory),
                "track": self.track,
                "load_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )

    def _not_ready(self, reason: str) -> None:
        self.model = None
        self.model_error = reason
        self.version_header = b"none"
        self.metrics.set_model(None, self.track, resolve_backend(self.settings.backend))
        log.error(
            "model not loaded; /ready stays false: %s",
            reason,
            extra={
                "model_dir": str(self.settings.model_dir or self.settings.models_root),
                "track": self.track,
            },
        )

    async def start(self) -> None:
        self.load()
        if self.settings.redis_url:
            from nepse_predictor.cache import RedisSink  # redis is imported only when used

            try:
                sink = RedisSink(
                    self.settings.redis_url,
                    self.metrics,
                    track=self.track,
                    timeout_ms=self.settings.redis_timeout_ms,
                    stream=self.settings.prediction_stream,
                    maxlen=self.settings.prediction_stream_maxlen,
                    ttl_seconds=self.settings.cache_ttl_seconds,
                    baseline_track=self.settings.shadow_baseline,
                )
            except ValueError as exc:
                log.error("NEPSE_REDIS_URL is not usable; serving without Redis: %s", exc)
                return
            if self.model is not None:
                sink.threshold = self.model.threshold
            self.sink = sink
            await sink.start()

    async def stop(self) -> None:
        self.heavy.close()
        if self.sink is not None:
            await self.sink.close()
            self.sink = None

    # --- predicting ---------------------------------------------------------------------

    def require_model(self) -> LoadedModel:
        model = self.model
        if model is None:
            raise ModelNotReady(self.model_error)
        return model

    async def predict(
        self,
        model: LoadedModel,
        rows: np.ndarray,
        count: int,
        fields: dict[str, Any],
        cache_rows: np.ndarray | None = None,
        cache_kind: str = "rows",
    ) -> np.ndarray:
        """`count` probabilities for float32 `rows`, through the cache when Redis is set up;
        the cache key is made of `cache_rows` when given (the bars endpoint keys on the bars it
        was sent)."""
        sink = self.sink
        key = None
        if sink is not None and sink.cache_enabled:
            from nepse_predictor.cache import cache_key

            key_source = cache_rows if cache_rows is not None else rows
            key = cache_key(model.version, key_source, cache_kind)
            cached = await sink.get(key, count)
            if cached is not None:
                fields["cache"] = "hit"
                return cached
            fields["cache"] = "miss" if sink.available else "bypass"
        if count > model.thread_rows:
            probabilities = await asyncio.to_thread(model.predict_proba, rows)
        else:
            probabilities = model.predict_proba(rows)
        probabilities = np.ascontiguousarray(probabilities, dtype=np.float32)
        if key is not None and sink is not None and sink.available:
            sink.put(key, probabilities)
        return probabilities

    def record(
        self,
        route: str,
        request_id: str,
        model: LoadedModel,
        probabilities: np.ndarray,
        started: float,
        fields: dict[str, Any],
        rows: np.ndarray | None = None,
    ) -> None:
        """Count the prediction by class and append it to the prediction log."""
        n = len(probabilities)
        ups = (
            int(np.count_nonzero(probabilities >= model.threshold))
            if n > 1
            else int(probabilities[0] >= model.threshold)
        )
        self.metrics.observe_predictions(self.track, route, ups, n - ups)
        fields["rows"] = n
        if self.settings.log_features and rows is not None:
            fields["features"] = rows.tolist()
        if self.sink is not None:
            self.sink.log_prediction(
                request_id,
                model.version,
                route,
                probabilities,
                (time.perf_counter() - started) * 1000,
                rows.tolist() if self.settings.log_features and rows is not None else None,
            )


async def run_handler(
    handler: Handler, state: ServingState, request: Incoming, fields: dict[str, Any]
) -> Reply:
    """Call an endpoint handler; every failure becomes a JSON error reply, never a traceback."""
    try:
        return await handler(state, request, fields)
    except InputError as exc:
        fields["error"] = str(exc)[:300]
        return Reply(exc.status, exc.payload())
    except ModelNotReady as exc:
        fields["error"] = "model not ready"
        return Reply(503, orjson.dumps({"error": f"model not ready: {exc}"}))
    except Exception:
        return internal_error(request.request_id, fields)


def internal_error(request_id: str, fields: dict[str, Any]) -> Reply:
    """The 500 reply for the exception being handled, which is logged with its traceback."""
    log.exception("unexpected error while answering", extra={"request_id": request_id})
    fields["error"] = "internal error"
    body = {"error": "internal error; the server log has the details", "request_id": request_id}
    return Reply(500, orjson.dumps(body))

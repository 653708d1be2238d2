"""Serving settings, read from the environment (prefix ``NEPSE_``), documented in one place.

NEPSE_MODEL_DIR              a model version directory (models/<version>); also read from the
                             chapter's MODEL_PATH, which may name a file in it (its folder is
                             used). Default: none (the server runs, not ready)
NEPSE_MODELS_ROOT            a folder of model versions, used when no model directory is set:
                             the newest version is served (`serve --models-root`)
NEPSE_MODEL_FALLBACK         under a models root, serve the newest version that verifies when
                             newer ones do not (default false: a newest version that fails its
                             checksums leaves the server not ready, naming the file); each
                             version passed over is logged and reported by /ready and /metrics
NEPSE_TRACK                  stable | canary | blue | green | shadow | active | preview
                             (default stable), answered in the X-Track header
NEPSE_BACKEND                auto (default: trees where the package is compiled, else onnx)
                             | trees | onnx | xgboost (see model.py)
NEPSE_REDIS_URL              e.g. redis://127.0.0.1:6379/0; unset: no cache, no prediction log
NEPSE_MAX_BATCH_ROWS         most rows (or bar series) in one request (default 10000)
NEPSE_MAX_BARS               most OHLCV bars in one /v1/predict/bars request, all series together
                             (default 50000): bounds the work one request costs; more get 413
NEPSE_HEAVY_WORKERS          worker processes that parse request bodies over 256 KiB, away from
                             the event loop (default 1; 0: a thread in the server process)
NEPSE_MAX_BODY_BYTES         larger request bodies get 413 (default 8388608, 8 MiB), also after
                             decompressing a gzip or deflate body
NEPSE_MAX_HEADER_BYTES       a larger request head (request line and headers) gets 431 and the
                             connection is closed (default 32768)
NEPSE_MAX_HEADERS            more header fields get 431 (default 100)
NEPSE_HEADER_TIMEOUT_SECONDS a request head must arrive within this long of the connection's
                             start or of its first byte (default 10), else the connection closes
NEPSE_BODY_TIMEOUT_SECONDS   a request body must arrive within this long of its head (default
                             30), else 408 and the connection closes
NEPSE_KEEP_ALIVE_SECONDS     an idle kept-alive connection is closed after this long (default 5)
NEPSE_MAX_CONNECTIONS        connections past this many open ones are closed at once (default
                             1000)
NEPSE_CONNECTION_MAX_AGE_SECONDS  a kept-alive connection older than this has its next answer
                             sent with `connection: close` (default 15; 0: no limit), so clients
                             behind a Service move to new pods, or to the other colour of a
                             blue-green flip, within this long
NEPSE_DRAIN_IDLE_SECONDS     on SIGTERM, a connection between requests is not cut at once (its
                             client may be sending that instant): its next request is answered
                             with `connection: close`, and it is closed if idle this long
                             (default 2)
NEPSE_HOST, NEPSE_PORT       where `serve` listens (default 127.0.0.1, 8000)
NEPSE_CACHE_TTL_SECONDS      prediction cache lifetime (default 3600); 0 turns the cache off
                             and keeps the prediction log
NEPSE_PREDICTION_STREAM      Redis stream of the prediction log (default nepse:predictions);
                             void markers live in <stream>:void (`nepse-predictor predictions`)
NEPSE_PREDICTION_STREAM_MAXLEN  the stream is capped near this many entries (default 100000):
                             each write trims the oldest entries first, in whole nodes, so it
                             may hold slightly more. Under Redis memory pressure only keys with
                             a TTL (the cache) are evicted with volatile-* policies; when none is
                             left, new log entries are dropped and counted (log_dropped)
NEPSE_REDIS_TIMEOUT_MS       connect and read timeout of every Redis call (default 100)
NEPSE_SHADOW_BASELINE        the track this one's predictions are compared with, live, in the
                             nepse_shadow_* metrics (default stable)
NEPSE_ACCESS_LOG             one JSON log line per request (default true)
NEPSE_LOG_FEATURES           also log the feature values of predictions (default false)
NEPSE_GRACEFUL_TIMEOUT_SECONDS  on SIGTERM, in-flight requests get this long (default 30)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nepse_predictor.tracks import Track

Backend = Literal["auto", "trees", "onnx", "xgboost"]


class Settings(BaseSettings):
    """Everything the server reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="NEPSE_", extra="ignore", populate_by_name=True)

    model_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("NEPSE_MODEL_DIR", "MODEL_PATH")
    )
    models_root: Path | None = None
    model_fallback: bool = False
    track: Track = "stable"
    backend: Backend = "auto"
    redis_url: str | None = None
    max_batch_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    max_bars: int = Field(default=50_000, ge=21, le=10_000_000)
    heavy_workers: int = Field(default=1, ge=0, le=64)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    max_headers: int = Field(default=100, ge=8, le=10_000)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    keep_alive_seconds: float = Field(default=5.0, gt=0, le=3600)
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    connection_max_age_seconds: float = Field(default=15.0, ge=0, le=86400)
    drain_idle_seconds: float = Field(default=2.0, gt=0, le=300)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    cache_ttl_seconds: int = Field(default=3600, ge=0)
    prediction_stream: str = Field(default="nepse:predictions", min_length=1)
    prediction_stream_maxlen: int = Field(default=100_000, ge=1)
    redis_timeout_ms: int = Field(default=100, ge=1, le=60_000)
    shadow_baseline: Track = "stable"
    access_log: bool = True
    log_features: bool = False
    graceful_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("model_dir", mode="after")
    @classmethod
    def _directory_of_a_file(cls, value: Path | None) -> Path | None:
        # The chapter's MODEL_PATH names the model file; its folder is the model directory.
        if value is not None and value.is_file():
            return value.parent
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            if not value.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value


def describe_settings_error(exc: Exception) -> str:
    """One readable line per bad setting, naming the variable, the value and the rule."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    lines = []
    for error in errors():
        field = ".".join(str(part) for part in error.get("loc", ())) or "settings"
        variable = "NEPSE_MODEL_DIR" if field == "model_dir" else f"NEPSE_{field.upper()}"
        lines.append(f"{variable}={error.get('input')!r}: {error.get('msg')}")
    return "; ".join(lines)

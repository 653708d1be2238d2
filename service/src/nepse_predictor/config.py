"""Serving settings: one field each below, read from the environment variable ``NEPSE_<FIELD>``.

Each field's description is its documentation; `nepse-predictor serve --help` prints them all
(`settings_help`). Command-line options of `serve` override the environment and are validated
by the same rules.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nepse_predictor.tracks import Track

Backend = Literal["auto", "trees", "onnx", "xgboost"]
# How long a client may take over one step of a connection.
ClientSeconds = Annotated[float, Field(gt=0, le=3600)]


# A Kubernetes Service named like a setting would inject NEPSE_<NAME>_PORT and similar
# variables: only the fields' own variables are read, the rest of the environment is ignored.
MODEL_PATH = "MODEL_PATH"  # the chapter's name for the model directory (or a file in it)


class Settings(BaseModel):
    """Everything the server reads from its environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_dir: Path | None = Field(
        default=None,
        description="a model version directory (models/<version>); also read from the "
        "chapter's MODEL_PATH, which may name a file in it (its folder is used). Default: none "
        "(the server runs, not ready)",
    )
    models_root: Path | None = Field(
        default=None,
        description="a folder of model versions, used when no model directory is set: the "
        "newest version is served (`serve --models-root`)",
    )
    model_fallback: bool = Field(
        default=False,
        description="under a models root, serve the newest version that verifies when newer "
        "ones do not (default false: a newest version that fails its checksums leaves the "
        "server not ready, naming the file); each version passed over is logged and reported "
        "by /ready and /metrics",
    )
    track: Track = Field(
        default="stable",
        description="stable | canary | blue | green | shadow | active | preview (default "
        "stable), answered in the X-Track header",
    )
    backend: Backend = Field(
        default="auto",
        description="auto (default: trees where the package is compiled, else onnx) | trees | "
        "onnx | xgboost (see model.py)",
    )
    redis_url: str | None = Field(
        default=None,
        description="e.g. redis://127.0.0.1:6379/0; unset: no cache, no prediction log",
    )
    max_batch_rows: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="most rows (or bar series) in one request (default 10000)",
    )
    max_bars: int = Field(
        default=50_000,
        ge=21,
        le=10_000_000,
        description="most OHLCV bars in one /v1/predict/bars request, all series together "
        "(default 50000): bounds the work one request costs; more get 413",
    )
    heavy_workers: int = Field(
        default=1,
        ge=0,
        le=64,
        description="worker processes that parse request bodies over 256 KiB, away from the "
        "event loop (default 1; 0: a thread in the server process)",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="larger request bodies get 413 (default 8388608, 8 MiB), also after "
        "decompressing a gzip or deflate body",
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="a larger request head (request line and headers) gets 431 and the "
        "connection is closed (default 32768)",
    )
    max_headers: int = Field(
        default=100, ge=8, le=10_000, description="more header fields get 431 (default 100)"
    )
    header_timeout_seconds: ClientSeconds = Field(
        default=10.0,
        description="a request head must arrive within this long of the connection's start or "
        "of its first byte (default 10), else the connection closes",
    )
    body_timeout_seconds: ClientSeconds = Field(
        default=30.0,
        description="a request body must arrive within this long of its head (default 30), "
        "else 408 and the connection closes",
    )
    keep_alive_seconds: ClientSeconds = Field(
        default=5.0,
        description="an idle kept-alive connection is closed after this long (default 5)",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="connections past this many open ones are closed at once (default 1000)",
    )
    connection_max_age_seconds: float = Field(
        default=15.0,
        ge=0,
        le=86400,
        description="a kept-alive connection older than this has its next answer sent with "
        "`connection: close` (default 15; 0: no limit), so clients behind a Service move to new "
        "pods, or to the other colour of a blue-green flip, within this long",
    )
    drain_idle_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="on SIGTERM, a connection between requests is not cut at once (its client "
        "may be sending that instant): its next request is answered with `connection: close`, "
        "and it is closed if idle this long (default 2)",
    )
    host: str = Field(
        default="127.0.0.1", min_length=1, description="where `serve` listens (default 127.0.0.1)"
    )
    port: int = Field(
        default=8000, ge=0, le=65535, description="the port `serve` listens on (default 8000)"
    )
    cache_ttl_seconds: int = Field(
        default=3600,
        ge=0,
        description="prediction cache lifetime (default 3600); 0 turns the cache off and keeps "
        "the prediction log",
    )
    prediction_stream: str = Field(
        default="nepse:predictions",
        min_length=1,
        description="Redis stream of the prediction log (default nepse:predictions); void "
        "markers live in <stream>:void (`nepse-predictor predictions`)",
    )
    prediction_stream_maxlen: int = Field(
        default=100_000,
        ge=1,
        description="the stream is capped near this many entries (default 100000): each write "
        "trims the oldest entries first, in whole nodes, so it may hold slightly more. Under "
        "Redis memory pressure only keys with a TTL (the cache) are evicted with volatile-* "
        "policies; when none is left, new log entries are dropped and counted (log_dropped)",
    )
    redis_timeout_ms: int = Field(
        default=100,
        ge=1,
        le=60_000,
        description="connect and read timeout of every Redis call (default 100)",
    )
    shadow_baseline: Track = Field(
        default="stable",
        description="the track this one's predictions are compared with, live, in the "
        "nepse_shadow_* metrics (default stable)",
    )
    access_log: bool = Field(
        default=True, description="one JSON log line per request (default true)"
    )
    log_features: bool = Field(
        default=False, description="also log the feature values of predictions (default false)"
    )
    graceful_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="on SIGTERM, in-flight requests get this long (default 30)",
    )

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """The settings in ``environ`` (default: this process's), with ``overrides`` (field ->
        value) on top; every value is validated, overrides included."""
        given = environment_settings(os.environ if environ is None else environ)
        return cls.model_validate({**given.values, **overrides})

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


def environment_variable(field: str) -> str:
    return f"NEPSE_{field.upper()}"


@dataclass
class GivenSettings:
    """Raw setting values (field -> value) and where each came from (field -> the variable or
    command-line option that gave it), so that an error names what the user wrote."""

    values: dict[str, Any] = dataclass_field(default_factory=dict)
    origins: dict[str, str] = dataclass_field(default_factory=dict)

    def give(self, field: str, value: Any, origin: str) -> None:
        self.values[field] = value
        self.origins[field] = origin

    def validate(self) -> Settings:
        """The settings; a bad value raises SettingsError naming its origin."""
        try:
            return Settings.model_validate(self.values)
        except ValidationError as exc:
            raise SettingsError(describe_settings_error(exc, self.origins)) from None


class SettingsError(ValueError):
    """A setting's value breaks its rule; the message names where it came from."""


def environment_settings(environ: Mapping[str, str]) -> GivenSettings:
    given = GivenSettings()
    for name in Settings.model_fields:
        variable = environment_variable(name)
        if variable in environ:
            given.give(name, environ[variable], variable)
    if "model_dir" not in given.values and MODEL_PATH in environ:
        given.give("model_dir", environ[MODEL_PATH], MODEL_PATH)
    return given


def describe_settings_error(exc: ValidationError, origins: Mapping[str, str] | None = None) -> str:
    """One readable part per bad setting: where it came from (``origins``, field -> variable
    or ``--option``; default the field's variable), the value and the rule."""
    origins = origins or {}
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        value = error.get("input")
        origin = origins.get(field, environment_variable(field))
        if origin.startswith("--"):
            parts.append(f"{origin} {value}: {error['msg']}")
        else:
            parts.append(f"{origin}={value!r}: {error['msg']}")
    return "; ".join(parts)


def settings_help(width: int = 79) -> str:
    """Every setting's variable and description, for `serve --help`."""
    lines = ["settings (environment variables):"]
    for name, field in Settings.model_fields.items():
        lines.append(f"  {environment_variable(name)}")
        lines.extend(
            textwrap.wrap(
                field.description or "", width, initial_indent=" " * 6, subsequent_indent=" " * 6
            )
        )
    return "\n".join(lines)

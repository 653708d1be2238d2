"""Serving settings: one field each below, read from the environment variable ``NEPSE_<FIELD>``.

The text under each field is its documentation: `nepse-predictor serve --help` prints them all
(`settings_help`). Command-line options of `serve` override the environment and are checked by
the same rules. The settings are a msgspec Struct, not a pydantic model: they are read on the
start-up path, which then needs neither pydantic nor FastAPI (see `app`).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec
from msgspec import Meta

from nepse_predictor.tracks import Track

Backend = Literal["auto", "trees", "onnx", "xgboost"]
# How long a client may take over one step of a connection.
ClientSeconds = Annotated[float, Meta(gt=0, le=3600)]
NonEmpty = Annotated[str, Meta(min_length=1)]

# A Kubernetes Service named like a setting would inject NEPSE_<NAME>_PORT and similar
# variables: only the fields' own variables are read, the rest of the environment is ignored.
MODEL_PATH = "MODEL_PATH"  # the chapter's name for the model directory (or a file in it)
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the server reads from its environment."""

    model_dir: Path | None = None
    """a model version directory (models/<version>); also read from the chapter's MODEL_PATH,
    which may name a file in it (its folder is used). Default: none (the server runs, not
    ready)
    """

    models_root: Path | None = None
    """a folder of model versions, used when no model directory is set: the newest version is
    served (`serve --models-root`)
    """

    model_fallback: bool = False
    """under a models root, serve the newest version that verifies when newer ones do not (default
    false: a newest version that fails its checksums leaves the server not ready, naming the
    file); each version passed over is logged and reported by /ready and /metrics
    """

    track: Track = "stable"
    """stable | canary | blue | green | shadow | active | preview (default stable), answered in
    the X-Track header
    """

    backend: Backend = "auto"
    """auto (default: trees where the package is compiled, else onnx) | trees | onnx | xgboost
    (see model.py)
    """

    redis_url: str | None = None
    """e.g. redis://127.0.0.1:6379/0; unset: no cache, no prediction log"""

    max_batch_rows: Annotated[int, Meta(ge=1, le=1_000_000)] = 10_000
    """most rows (or bar series) in one request (default 10000)"""

    max_bars: Annotated[int, Meta(ge=21, le=10_000_000)] = 50_000
    """most OHLCV bars in one /v1/predict/bars request, all series together (default 50000):
    bounds the work one request costs; more get 413
    """

    heavy_workers: Annotated[int, Meta(ge=0, le=64)] = 1
    """worker processes that parse request bodies over 256 KiB, away from the event loop (default
    1; 0: a thread in the server process)
    """

    max_body_bytes: Annotated[int, Meta(ge=1024)] = 8_388_608
    """larger request bodies get 413 (default 8388608, 8 MiB), also after decompressing a gzip or
    deflate body
    """

    max_header_bytes: Annotated[int, Meta(ge=1024, le=1_048_576)] = 32_768
    """a larger request head (request line and headers) gets 431 and the connection is closed
    (default 32768)
    """

    max_headers: Annotated[int, Meta(ge=8, le=10_000)] = 100
    """more header fields get 431 (default 100)"""

    header_timeout_seconds: ClientSeconds = 10.0
    """a request head must arrive within this long of the connection's start or of its first byte
    (default 10), else the connection closes
    """

    body_timeout_seconds: ClientSeconds = 30.0
    """a request body must arrive within this long of its head (default 30), else 408 and the
    connection closes
    """

    keep_alive_seconds: ClientSeconds = 5.0
    """an idle kept-alive connection is closed after this long (default 5)"""

    max_connections: Annotated[int, Meta(ge=1, le=1_000_000)] = 1000
    """connections past this many open ones are closed at once (default 1000)"""

    max_pipelined_requests: Annotated[int, Meta(ge=1, le=10_000)] = 32
    """a connection that sends more than this many requests ahead of its answers is closed
(default 32)"""

    connection_max_age_seconds: Annotated[float, Meta(ge=0, le=86_400)] = 15.0
    """a kept-alive connection older than this has its next answer sent with `connection: close`
    (default 15; 0: no limit), so clients behind a Service move to new pods, or to the other
    colour of a blue-green flip, within this long
    """

    drain_idle_seconds: Annotated[float, Meta(gt=0, le=300)] = 2.0
    """on SIGTERM, a connection between requests is not cut at once (its client may be sending
    that instant): its next request is answered with `connection: close`, and it is closed if
    idle this long (default 2)
    """

    host: NonEmpty = "127.0.0.1"
    """where `serve` listens (default 127.0.0.1)"""

    port: Annotated[int, Meta(ge=0, le=65_535)] = 8000
    """the port `serve` listens on (default 8000)"""

    cache_ttl_seconds: Annotated[int, Meta(ge=0)] = 3600
    """prediction cache lifetime (default 3600); 0 turns the cache off and keeps the prediction
    log
    """

    prediction_stream: NonEmpty = "nepse:predictions"
    """Redis stream of the prediction log (default nepse:predictions); void markers live in
    <stream>:void (`nepse-predictor predictions`)
    """

    prediction_stream_maxlen: Annotated[int, Meta(ge=1)] = 100_000
    """the stream is capped near this many entries (default 100000): each write trims the oldest
    entries first, in whole nodes, so it may hold slightly more. Under Redis memory pressure
    only keys with a TTL (the cache) are evicted with volatile-* policies; when none is left,
    new log entries are dropped and counted (log_dropped)
    """

    redis_timeout_ms: Annotated[int, Meta(ge=1, le=60_000)] = 100
    """connect and read timeout of every Redis call (default 100)"""

    shadow_baseline: Track = "stable"
    """the track this one's predictions are compared with, live, in the nepse_shadow_* metrics
    (default stable)
    """

    access_log: bool = True
    """one JSON log line per request (default true)"""

    log_features: bool = False
    """also log the feature values of predictions (default false)"""

    graceful_timeout_seconds: Annotated[float, Meta(gt=0)] = 30.0
    """on SIGTERM, in-flight requests get this long (default 30)"""

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """The settings in ``environ`` (default: this process's), with ``overrides`` (field ->
        value) on top; every value is checked, overrides included (SettingsError)."""
        given = environment_settings(os.environ if environ is None else environ)
        for name, value in overrides.items():
            given.give(name, value, environment_variable(name))
        return given.validate()


def environment_variable(field: str) -> str:
    return f"NEPSE_{field.upper()}"


class SettingsError(ValueError):
    """A setting's value breaks its rule; the message names where it came from."""


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
        """The settings; bad values raise SettingsError naming, for each, its origin, the
        value and the rule."""
        try:
            return _convert(self.values)
        except SettingsError:
            pass
        problems = []
        for name, value in self.values.items():  # one at a time, to name every bad one
            try:
                _convert({name: value})
            except SettingsError as exc:
                problems.append(self._describe(name, str(exc)))
        raise SettingsError("; ".join(problems))

    def _describe(self, field: str, problem: str) -> str:
        if choices := _choices(field):
            problem = f"expected one of {', '.join(choices)}"
        origin = self.origins.get(field, environment_variable(field))
        value = self.values.get(field)
        if origin.startswith("--"):
            return f"{origin} {value}: {problem}"
        return f"{origin}={value!r}: {problem}"


def environment_settings(environ: Mapping[str, str]) -> GivenSettings:
    given = GivenSettings()
    for name in Settings.__struct_fields__:
        variable = environment_variable(name)
        if variable in environ:
            given.give(name, environ[variable], variable)
    if "model_dir" not in given.values and MODEL_PATH in environ:
        given.give("model_dir", environ[MODEL_PATH], MODEL_PATH)
    return given


class _Refused(Exception):
    def __init__(self, problem: str) -> None:
        self.problem = problem


def _convert(raw: Mapping[str, Any]) -> Settings:
    """Settings from raw values; SettingsError says what is wrong with the first bad one."""
    values = dict(raw)
    try:
        _prepare(values)
        return msgspec.convert(values, Settings, strict=False, dec_hook=_paths)
    except _Refused as exc:
        raise SettingsError(exc.problem) from None
    except msgspec.ValidationError as exc:
        raise SettingsError(_readable(str(exc).rpartition(" - at `$.")[0])) from None


def _prepare(values: dict[str, Any]) -> None:
    """The rules a field's type cannot say, applied to raw ``values`` in place."""
    url = values.get("redis_url")
    if isinstance(url, str):
        url = url.strip()
        if url and not url.startswith(REDIS_SCHEMES):
            raise _Refused("must be a redis://, rediss:// or unix:// URL")
        values["redis_url"] = url or None
    # The chapter's MODEL_PATH names the model file; its folder is the model directory.
    model_dir = values.get("model_dir")
    if isinstance(model_dir, str | PurePath) and Path(model_dir).is_file():
        values["model_dir"] = Path(model_dir).parent


def _paths(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str | PurePath):
        return Path(value)
    raise TypeError(f"expected a path, got {type(value).__name__}")


def _readable(problem: str) -> str:
    """msgspec's "Expected `int` >= 1" as "expected an integer >= 1". Every raw value is a
    string, so "got `str`" says nothing and is left out."""
    problem = problem.removesuffix(", got `str`")
    for code, word in {
        "`int`": "an integer",
        "`float`": "a number",
        "`bool`": "true or false",
    }.items():
        problem = problem.replace(code, word)
    problem = problem.replace("`", "")
    return problem[:1].lower() + problem[1:]


def _choices(field: str) -> tuple[str, ...]:
    """The values a closed-set setting takes (empty for the others)."""
    for info in msgspec.structs.fields(Settings):
        if info.name == field and get_origin(info.type) is Literal:
            return get_args(info.type)
    return ()


def setting_descriptions() -> dict[str, str]:
    """Each setting's documentation: the string under its field in `Settings`."""
    (definition,) = ast.parse(textwrap.dedent(inspect.getsource(Settings))).body
    assert isinstance(definition, ast.ClassDef)
    out: dict[str, str] = {}
    for statement, following in itertools.pairwise(definition.body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
        ):
            out[statement.target.id] = " ".join(str(following.value.value).split())
    return out


def settings_help(width: int = 79) -> str:
    """Every setting's variable and description, for `serve --help`."""
    lines = ["settings (environment variables):"]
    for name, description in setting_descriptions().items():
        lines.append(f"  {environment_variable(name)}")
        lines.extend(
            textwrap.wrap(description, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
        )
    return "\n".join(lines)

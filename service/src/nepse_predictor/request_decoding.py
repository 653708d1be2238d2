"""A JSON body into one of the request shapes, or an `InputError` that names the field.

The shapes are decoded by msgspec straight from the bytes, checks included (types, float32
range, lengths, unknown fields), which is the hot path; of several problems, the first in the
document is named. Only a body that fails is parsed a
second time, leniently (Python's json reads NaN and Infinity, as many clients write them), so
the error can quote the offending value and the route's hints can phrase it for the client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec

from nepse_predictor.input_error import InputError, bad_number, json_type, show

T = TypeVar("T")

# (kind, field pattern) -> problem. Kinds: type, missing, unknown, length, enum. A pattern is
# the field with list indexes written [*]; a last segment * matches any member name.
Hints = Mapping[tuple[str, str], str]
# field, lenient document -> text appended to the field's name (say, a tensor's row)
Annotate = Callable[[str, Any], str]

_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>.*)`)?$", re.DOTALL)
_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_INDEX = re.compile(r"\[\d+\]")
_MAX_NAME = 64

_KINDS = {
    "float": "a number",
    "int": "an integer",
    "str": "a string",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
}
_JSON_NAMES = {"str": "string", "bool": "boolean", "int": "number", "float": "number"}
_MISSING = object()

_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def hint_table(entries: Mapping[tuple[str, str], str]) -> Hints:
    """Hints whose keys may name several kinds or field patterns at once, `|` between them:
    `("missing|length", "inputs")` gives both kinds of problem with `inputs` the same text."""
    return {
        (kind, pattern): text
        for (kinds, patterns), text in entries.items()
        for kind in kinds.split("|")
        for pattern in patterns.split("|")
    }


def decode(
    body: bytes,
    shape: type[T],
    hints: Hints | None = None,
    annotate: Annotate | None = None,
    whole: Callable[[Any], None] | None = None,
) -> T:
    """`body` as `shape`, or InputError naming the field and what is wrong with it. `whole`
    checks a failed body as a whole before its fields are (it raises InputError)."""
    if not body:
        raise InputError("body", "is empty; send a JSON object")
    decoder: msgspec.json.Decoder[T] | None = _decoders.get(shape)
    if decoder is None:
        decoder = _decoders[shape] = msgspec.json.Decoder(shape)
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        error = exc
        document = _lenient(body)
    except msgspec.DecodeError as exc:
        # Not strict JSON: perhaps NaN or Infinity tokens, which Python's json writes.
        document = _lenient(body)
        if document is _MISSING:
            reason = str(exc).removeprefix("JSON is malformed: ")
            raise InputError("body", f"is not valid JSON: {reason}") from None
        try:
            return msgspec.convert(document, shape)
        except msgspec.ValidationError as converted:
            error = converted
    if whole is not None and document is not _MISSING:
        whole(document)
    raise _input_error(error, document, hints or {}, annotate) from None


def _lenient(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _MISSING


def _walk(document: Any, path: str) -> tuple[str, Any]:
    """The field name (without `$.`) and the value at a msgspec error path."""
    parts: list[str] = []
    value = document
    for match in _PATH_TOKEN.finditer(path):
        key, index = match.groups()
        if key is not None:
            parts.append(("." if parts else "") + _name(key))
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        else:
            parts.append(f"[{index}]")
            position = int(index)
            value = (
                value[position] if isinstance(value, list) and position < len(value) else _MISSING
            )
    return "".join(parts), value


def _name(key: str) -> str:
    return key if len(key) <= _MAX_NAME else key[: _MAX_NAME - 3] + "..."


def _join(field: str, member: str) -> str:
    return f"{field}.{_name(member)}" if field else _name(member)


def _pattern(field: str) -> str:
    return _INDEX.sub("[*]", field)


def _hint(hints: Hints, kind: str, field: str, value: Any) -> str | None:
    pattern = _pattern(field)
    hint = hints.get((kind, pattern))
    if hint is None:
        parent = pattern.rsplit(".", 1)[0] + ".*" if "." in pattern else "*"
        hint = hints.get((kind, parent))
    if hint is None:
        return None
    present = value is not _MISSING
    return hint.format(
        got=json_type(value) if present else "nothing",
        value=show(value) if present else "",
        count=len(value) if isinstance(value, list | str) else 0,
    )


def _problem(message: str, value: Any) -> tuple[str, str]:
    """The kind of a msgspec message and the problem in this service's words."""
    if match := re.fullmatch(r"Expected `([^`]+)`, got `([^`]+)`", message):
        wanted = " or ".join(_KINDS.get(k, k) for k in match[1].split(" | ") if k != "null")
        got = json_type(value) if value is not _MISSING else _JSON_NAMES.get(match[2], match[2])
        shown = f" {show(value)}" if isinstance(value, str | int | float) else ""
        return "type", f"expected {wanted}, got {got}{shown}"
    if match := re.fullmatch(r"Expected `(float|int)` (>=|>|<=|<) (.+)", message):
        return "range", _out_of_range(match[1], match[2], match[3], value)
    if message == "Number out of range":
        return "range", bad_number(value) or f"{show(value)} is outside the float32 range"
    if match := re.fullmatch(r"Expected `(array|str)` of length (>=|<=) (\d+)", message):
        unit = "items" if match[1] == "array" else "characters"
        bound = "at least" if match[2] == ">=" else "at most"
        size = f", got {len(value)}" if isinstance(value, list | str) else ""
        if match[1] == "array" and match[3] == "1" and match[2] == ">=":
            return "length", "is empty; send at least one"
        return "length", f"expected {bound} {match[3]} {unit}{size}"
    if message.startswith("Invalid enum value"):
        return "enum", f"{show(value)} is not one of the values this field takes"
    return "type", message[0].lower() + message[1:]


def _out_of_range(kind: str, operator: str, bound: str, value: Any) -> str:
    if kind == "float":
        problem = bad_number(value)
        if problem is not None:
            return problem
    if isinstance(value, int | float) and not isinstance(value, bool) and float(bound) == 0:
        if operator == ">":
            return f"must be positive, got {value:g}"
        if operator == ">=":
            return (
                f"expected a non-negative integer, got {value}"
                if kind == "int"
                else f"must not be negative, got {value:g}"
            )
    return f"must be {operator} {bound}, got {show(value)}"


def _input_error(
    error: msgspec.ValidationError, document: Any, hints: Hints, annotate: Annotate | None
) -> InputError:
    match = _AT.match(str(error))
    assert match is not None
    message, path = match["message"], match["path"] or ""
    field, value = _walk(document, path)
    member = re.fullmatch(
        r"Object (missing required|contains unknown) field `(.*)`", message, re.DOTALL
    )
    if member is not None:
        kind = "missing" if member[1] == "missing required" else "unknown"
        field = _join(field, member[2])
        problem = "missing required field" if kind == "missing" else "unknown field"
        value = _MISSING
    else:
        kind, problem = _problem(message, value)
    problem = _hint(hints, kind, field, value) or problem
    if not field:
        field = "body"
    if annotate is not None:
        field += annotate(field, document)
    return InputError(field, problem)

"""Environment files as YAML: edited in place (round trip) or read as plain data.

`YamlDoc` keeps comments, key order and quoting, records each change it makes, and refuses to
write a file that is not already in the layout it writes, so that a promotion's diff holds only
the promoted lines and its revert is exact.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from .errors import GitopsError


def make_yaml() -> YAML:
    """The one YAML configuration used to read and write environment files."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _dump(yaml: YAML, data: Any) -> str:
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


MISSING = object()


@dataclass
class Change:
    path: tuple[str, ...]
    old: Any
    new: Any

    def describe(self) -> str:
        key = ".".join(self.path)
        old = "(absent)" if self.old is MISSING else repr(_plain(self.old))
        new = "(removed)" if self.new is MISSING else repr(_plain(self.new))
        return f"{key}: {old} -> {new}"


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)
    return value


class YamlDoc:
    """A YAML file edited in place: comments, key order and quoting survive; only set keys move.

    Saving refuses when the file is not in the layout the writer produces (for example another
    indentation), because then unrelated lines would change and a revert would not be exact.
    """

    def __init__(self, path: Path, text: str, display: str | None = None) -> None:
        self.path = path
        self.display = display or str(path)
        self.original = text
        self.yaml = make_yaml()
        try:
            self.data = self.yaml.load(text)
        except YAMLError as exc:
            raise GitopsError(f"{self.display}: not valid YAML: {exc}") from exc
        if self.data is None:
            self.data = CommentedMap()
        if not isinstance(self.data, dict):
            raise GitopsError(f"{self.display}: expected a mapping at the top level")
        self.changes: list[Change] = []

    @classmethod
    def load(cls, path: Path, display: str | None = None) -> YamlDoc:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise GitopsError(f"{display or path}: file not found") from exc
        return cls(path, text, display)

    # -- reading ---------------------------------------------------------------------------
    def get(self, keys: Iterable[str], default: Any = MISSING) -> Any:
        node: Any = self.data
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node

    # -- writing ---------------------------------------------------------------------------
    def _parent(self, keys: tuple[str, ...], create: bool) -> CommentedMap:
        node: Any = self.data
        for i, key in enumerate(keys[:-1]):
            if key not in node:
                if not create:
                    raise GitopsError(f"{self.display}: missing key {'.'.join(keys[: i + 1])}")
                node[key] = CommentedMap()
            node = node[key]
            if not isinstance(node, CommentedMap):
                raise GitopsError(
                    f"{self.display}: {'.'.join(keys[: i + 1])} must be a mapping, "
                    f"found {type(node).__name__}"
                )
        parent: CommentedMap = node  # ruamel.yaml has no type information: checked above
        return parent

    def set(self, keys: Iterable[str], value: Any) -> bool:
        """Set a scalar, keeping the quoting style of the value it replaces. Returns changed."""
        keys = tuple(keys)
        parent = self._parent(keys, create=True)
        last = keys[-1]
        old = parent.get(last, MISSING)
        if old is not MISSING and _plain(old) == value and type(old) is not bool:
            return False
        new: Any = value
        if isinstance(value, str):
            if isinstance(old, DoubleQuotedScalarString) or old is MISSING:
                new = DoubleQuotedScalarString(value)
            elif isinstance(old, SingleQuotedScalarString):
                new = SingleQuotedScalarString(value)
        if old is MISSING:
            parent.insert(0, last, new)
        else:
            parent[last] = new
        self.changes.append(Change(keys, old, value))
        return True

    def delete(self, keys: Iterable[str]) -> bool:
        keys = tuple(keys)
        parent = self._parent(keys, create=False)
        if keys[-1] not in parent:
            return False
        old = parent[keys[-1]]
        del parent[keys[-1]]
        self.changes.append(Change(keys, old, MISSING))
        return True

    def render(self) -> str:
        return _dump(self.yaml, self.data)

    def new_text(self) -> str:
        """The file's text after the changes, refusing when unrelated lines would move."""
        canonical = _dump(make_yaml(), make_yaml().load(self.original))
        if canonical != self.original:
            first = next(
                (
                    i + 1
                    for i, (a, b) in enumerate(
                        zip(self.original.splitlines(), canonical.splitlines(), strict=False)
                    )
                    if a != b
                ),
                min(len(self.original.splitlines()), len(canonical.splitlines())) + 1,
            )
            raise GitopsError(
                f"{self.display}: line {first} is not in the layout the promotion tool writes "
                "(2-space mappings, list items indented by 2 under their key, no tabs); "
                "rewriting it would change lines that are not being promoted. "
                "Reformat the file in its own commit first."
            )
        return self.render()

    def diff(self, new_text: str | None = None) -> str:
        new_text = self.new_text() if new_text is None else new_text
        return "".join(
            difflib.unified_diff(
                self.original.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"a/{self.display}",
                tofile=f"b/{self.display}",
            )
        )


def load_plain(path: Path, display: str | None = None) -> Any:
    """Load a YAML file into plain Python data (dicts, lists, scalars)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise GitopsError(f"{display or path}: file not found") from exc
    return load_plain_text(text, display or str(path))


def load_plain_text(text: str, display: str) -> Any:
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise GitopsError(f"{display}: not valid YAML: {exc}") from exc

"""The JSONPath subset of the config, compiled once into plain accessors.

Supported: ``$``, ``.name``, ``['name']`` / ``["name"]``, ``[index]`` (negative
counts from the end) and at most one ``[*]``, which fans a batch out into rows.
A generic JSONPath engine costs ~10 µs per path per request; these accessors are
a few dictionary and list look-ups.

An accessor never raises: a missing key, an index out of range or the wrong
container type gives None, which the counters record as missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

SUPPORTED = "$, .name, ['name'], [index] and one [*]"

Step = str | int  # a key of an object, or an index into an array
Getter = Callable[[Any], Any]

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_][A-Za-z0-9_\-]*)
      | \[\s*'(?P<single>(?:[^'\\]|\\.)*)'\s*\]
      | \[\s*"(?P<double>(?:[^"\\]|\\.)*)"\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*(?P<star>\*)\s*\]""",
    re.VERBOSE,
)


class PathError(ValueError):
    """A path outside the supported subset."""


@dataclass(frozen=True)
class JSONPath:
    """A parsed path: the steps before ``[*]`` and, if it fans out, the steps after it."""

    text: str
    head: tuple[Step, ...]
    tail: tuple[Step, ...] | None  # None: no [*]

    @property
    def fans_out(self) -> bool:
        return self.tail is not None


def parse(text: str) -> JSONPath:
    """Parse a path, rejecting what the subset does not support with a clear message."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathError(f"path {text!r} must start with '$' (supported: {SUPPORTED})")
    if ".." in text:
        raise PathError(
            f"path {text!r}: recursive descent '..' is not supported (supported: {SUPPORTED})"
        )
    steps: list[Step | None] = []  # None marks [*]
    position = 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            rest = text[position:]
            what = "filters" if rest.startswith("[?") else "slices" if ":" in rest else "syntax"
            raise PathError(
                f"path {text!r}: {what} at {rest!r} not supported (supported: {SUPPORTED})"
            )
        if match["name"] is not None:
            steps.append(match["name"])
        elif match["single"] is not None:
            steps.append(_unescape(match["single"]))
        elif match["double"] is not None:
            steps.append(_unescape(match["double"]))
        elif match["index"] is not None:
            steps.append(int(match["index"]))
        else:
            steps.append(None)
        position = match.end()
    if steps.count(None) > 1:
        raise PathError(f"path {text!r}: at most one [*] per path (supported: {SUPPORTED})")
    if None in steps:
        star = steps.index(None)
        return JSONPath(text, tuple(steps[:star]), tuple(steps[star + 1 :]))  # type: ignore[arg-type]
    return JSONPath(text, tuple(steps), None)  # type: ignore[arg-type]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def getter(steps: Sequence[Step]) -> Getter:
    """A function following ``steps`` into a parsed JSON document; None when it can't."""
    steps = tuple(steps)
    if not steps:
        return _identity
    if len(steps) == 1 and isinstance(steps[0], str):
        key = steps[0]
        return lambda doc: doc.get(key) if type(doc) is dict else None

    def follow(doc: Any) -> Any:
        for step in steps:
            if type(step) is str:
                if type(doc) is not dict:
                    return None
                doc = doc.get(step)
            else:
                if type(doc) is not list or not -len(doc) <= step < len(doc):
                    return None
                doc = doc[step]
        return doc

    return follow


def _identity(doc: Any) -> Any:
    return doc

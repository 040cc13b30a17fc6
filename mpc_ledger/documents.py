"""JSON and TOML that a person or a peer handed us, parsed with their nesting bounded.

Both parsers recurse once per level of nesting: ``[[[[...]]]]`` a few
thousand levels deep makes them raise `RecursionError` from deep inside,
which is no user's error message. `parse_json` and `parse_toml` are the
only boundary: a document nested deeper than `NESTING_DEPTH_MAX` (no file
of this project comes near it), or too deep for the parser at all, raises
`NestingError`, a `ValueError` the caller reports like any other parse
error (the file and what is wrong).
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

__all__ = ["NESTING_DEPTH_MAX", "NestingError", "parse_json", "parse_toml"]

NESTING_DEPTH_MAX = 32


class NestingError(ValueError):
    """A document nests arrays or objects (tables) more than `NESTING_DEPTH_MAX` deep."""

    def __init__(self) -> None:
        super().__init__(f"nested more than {NESTING_DEPTH_MAX} levels deep")


def parse_json(text: str | bytes) -> Any:
    """`json.loads`, with `NestingError` for a document nested too deeply."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise NestingError() from None
    _check_depth(document)
    return document


def parse_toml(text: str) -> dict[str, Any]:
    """`tomllib.loads`, with `NestingError` for a document nested too deeply."""
    try:
        document = tomllib.loads(text)
    except RecursionError:
        raise NestingError() from None
    _check_depth(document)
    return document


def _check_depth(document: Any) -> None:
    # Iterative, so that checking a document cannot recurse either.
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > NESTING_DEPTH_MAX:
            raise NestingError()
        pending.extend((child, depth + 1) for child in children)

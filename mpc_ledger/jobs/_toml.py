"""Typed reads from a parsed TOML document that collect every problem with its field path.

The job spec, the policy and the dataset schema are files a person writes;
each wrong field is reported (``model.hidden_sizes[1]: must be a positive
integer``) and reading goes on, so one run shows them all.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mpc_ledger.documents import NestingError, parse_toml
from mpc_ledger.errors import ConfigError

__all__ = ["Fields", "merge_problems", "read_toml"]


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or a `ConfigError` naming the file (and line) when it cannot be."""
    try:
        return parse_toml(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except OSError as exc:  # its text repeats the path: a policy's reason goes on the ledger
        raise ConfigError(f"cannot read: {exc.strerror or type(exc).__name__}", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=path) from None
    except (tomllib.TOMLDecodeError, NestingError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None


def merge_problems(first: Sequence[str], then: Sequence[str]) -> list[str]:
    """``first``, then those of ``then`` about a field ``first`` does not already name.

    A field whose type was wrong was read as a placeholder (0, ""); the
    value checks that run after would only repeat the same field.
    """
    named = {problem.partition(": ")[0] for problem in first}
    return [*first, *(p for p in then if p.partition(": ")[0] not in named)]


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class Fields:
    """Reads fields of tables, appending ``path: message`` to ``problems`` for each bad one."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.problems.append(f"{field}: {message}")

    def table(self, value: Any, field: str, keys: Sequence[str]) -> dict[str, Any]:
        """``value`` as a table with only ``keys`` (an empty table when it is not one)."""
        if not isinstance(value, dict):
            self.add(field or "document", "must be a table")
            return {}
        for key in value:
            if key not in keys:
                self.add(_join(field, key), f"unknown key; known: {', '.join(keys)}")
        return value

    def text(self, table: dict[str, Any], key: str, prefix: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            self.add(_join(prefix, key), "required")
            return ""
        if not isinstance(value, str):
            self.add(_join(prefix, key), "must be a string")
            return ""
        return value

    def integer(
        self, table: dict[str, Any], key: str, prefix: str, default: int | None = None
    ) -> int:
        value = table.get(key, default)
        if value is None:
            self.add(_join(prefix, key), "required")
            return 0
        if not isinstance(value, int) or isinstance(value, bool):
            self.add(_join(prefix, key), "must be an integer")
            return 0
        return value

    def number(
        self, table: dict[str, Any], key: str, prefix: str, default: float | None = None
    ) -> float:
        value = table.get(key, default)
        if value is None:
            self.add(_join(prefix, key), "required")
            return 0.0
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.add(_join(prefix, key), "must be a number")
            return 0.0
        return float(value)

    def flag(
        self, table: dict[str, Any], key: str, prefix: str, default: bool | None = None
    ) -> bool:
        value = table.get(key, default)
        if value is None:
            self.add(_join(prefix, key), "required")
            return False
        if not isinstance(value, bool):
            self.add(_join(prefix, key), "must be true or false")
            return False
        return value

    def texts(
        self,
        table: dict[str, Any],
        key: str,
        prefix: str,
        default: Sequence[str] | None = None,
    ) -> tuple[str, ...]:
        value = table.get(key, default)
        field = _join(prefix, key)
        if value is None:
            self.add(field, "required (a list of strings)")
            return ()
        if not isinstance(value, list | tuple):
            self.add(field, "must be a list of strings")
            return ()
        items: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                items.append(item)
            else:  # a placeholder keeps the indices of the items after it
                self.add(f"{field}[{index}]", "must be a string")
                items.append("")
        return tuple(items)

    def integers(
        self,
        table: dict[str, Any],
        key: str,
        prefix: str,
        default: Sequence[int] | None = None,
    ) -> tuple[int, ...]:
        value = table.get(key, default)
        field = _join(prefix, key)
        if value is None:
            self.add(field, "required (a list of integers)")
            return ()
        if not isinstance(value, list | tuple):
            self.add(field, "must be a list of integers")
            return ()
        items: list[int] = []
        for index, item in enumerate(value):
            if isinstance(item, int) and not isinstance(item, bool):
                items.append(item)
            else:  # a placeholder keeps the indices of the items after it
                self.add(f"{field}[{index}]", "must be an integer")
                items.append(0)
        return tuple(items)

"""Errors a user can act on.

A `UserError` is bad input: the CLI prints its one line and exits 2; it never
shows a stack trace. It names where the problem is (a file, a field) and what
is wrong, so the message is enough to fix it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "IdentityError", "UserError"]


class UserError(Exception):
    """Bad input from a person or a file they handed us."""

    exit_code = 2

    def __init__(self, message: str, *, path: Path | str | None = None, field: str | None = None):
        self.path = str(path) if path is not None else None
        self.field = field
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = ": ".join(part for part in (self.path, self.field) if part)
        return f"{where}: {self.detail}" if where else self.detail


class ConfigError(UserError):
    """A configuration file (party config, genesis, member file) is wrong."""


class IdentityError(UserError):
    """Key or certificate material is missing, unsafe or does not match."""

"""Entry point of `mpc-ledger`.

Exit codes: 0 success; 1 the operation failed (a daemon did not answer, a
check did not hold); 2 bad input (usage, a file, a field) — one line naming
what and where, never a stack trace; 130 interrupted. Errors go to stderr,
output alone to stdout; commands that call a daemon share
`mpc_ledger.cli._daemon_call` for that.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mpc_ledger import __version__
from mpc_ledger.cli import (
    audit,
    compliance,
    consortium,
    dataset,
    dev,
    job,
    ledger,
    model,
    party,
    status,
    user,
)
from mpc_ledger.errors import UserError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mpc-ledger",
        description="Joint training on secret shares, recorded on a consortium ledger.",
    )
    parser.add_argument("--version", action="version", version=f"mpc-ledger {__version__}")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    party.register(groups)
    consortium.register(groups)
    status.register(groups)
    ledger.register(groups)
    compliance.register(groups)
    audit.register(groups)
    dataset.register(groups)
    user.register(groups)
    job.register(groups)
    model.register(groups)
    dev.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except UserError as exc:
        print(f"mpc-ledger: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())

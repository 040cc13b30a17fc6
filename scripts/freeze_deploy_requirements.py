"""Write the pinned runtime requirements of the party image from this virtual environment.

    .venv/bin/python scripts/freeze_deploy_requirements.py          # rewrite the files
    .venv/bin/python scripts/freeze_deploy_requirements.py --check  # exit 1 if they differ

`pip freeze` lists everything in .venv, dev tools included. The image needs only
the runtime closure: mpc-ledger's own dependencies (read from pyproject.toml, not
from the editable install's metadata, which can lag behind it), their
dependencies, and so on, each at the version installed here, plus crypten, which
the project installs with --no-deps (its published pins cannot install on
PyTorch 2.13; see the Makefile). PyTorch goes in a file of its own because the
image installs it from the CPU wheel index, where its version carries "+cpu".

The image installs both files with --no-deps: every package it gets is named
here, at this version, and pip's resolver never reads crypten's stale pins.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "deploy" / "requirements.txt"
TORCH_REQUIREMENTS = ROOT / "deploy" / "requirements-torch.txt"
# Installed with --no-deps by the Makefile; the modules it really imports are
# dependencies of mpc-ledger itself.
NO_DEPS = ("crypten",)
SEPARATE = ("torch",)

HEADER = """\
# Pinned runtime dependencies of the mpc-ledger party image ({what}).
# Generated from the development venv by scripts/freeze_deploy_requirements.py;
# do not edit by hand. The image installs this file with `pip install --no-deps`.
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    """The project's run-time dependencies, as pyproject.toml declares them (no extras)."""
    document = tomllib.loads(pyproject.read_text())
    return [Requirement(text) for text in document["project"]["dependencies"]]


def runtime_closure() -> dict[str, str]:
    """canonical name -> installed version, for everything the project needs at run time."""
    environment: dict[str, str] = {**dict(default_environment()), "extra": ""}
    versions: dict[str, str] = {}
    pending = [
        r.name for r in project_requirements() if r.marker is None or r.marker.evaluate(environment)
    ]
    pending += NO_DEPS
    while pending:
        name = canonical(pending.pop())
        if name in versions:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is needed at run time but not installed here") from None
        versions[name] = distribution.version
        if name in NO_DEPS:
            continue
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                pending.append(requirement.name)
    return versions


def render(versions: dict[str, str]) -> tuple[str, str]:
    """(requirements.txt, requirements-torch.txt) text."""
    main_lines = [f"{n}=={v}" for n, v in sorted(versions.items()) if n not in SEPARATE]
    torch_lines = [f"{n}=={v}" for n, v in sorted(versions.items()) if n in SEPARATE]
    main = HEADER.format(what="from PyPI") + "\n".join(main_lines) + "\n"
    torch = (
        HEADER.format(what="from https://download.pytorch.org/whl/cpu")
        + "\n".join(torch_lines)
        + "\n"
    )
    return main, torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    wanted = dict(zip((REQUIREMENTS, TORCH_REQUIREMENTS), render(runtime_closure()), strict=True))
    if args.check:
        stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text() != text]
        for path in stale:
            print(
                f"{path.relative_to(ROOT)} differs from this venv; regenerate it", file=sys.stderr
            )
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

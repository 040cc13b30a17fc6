"""Helpers for the deployment artefacts' tests: paths, tools from the venv, YAML documents."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCRIPTS = ROOT / "scripts"
# The newest Kubernetes whose schemas kubernetes-validate bundles (1.37.0 in 1.37.0).
KUBERNETES_VERSION = "1.37.0"


def tool(name: str) -> str | None:
    """An executable from this venv (where dev tools are installed), else from PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else shutil.which(name)


def require_tool(name: str, package: str) -> str:
    found = tool(name)
    if found is None:
        pytest.skip(f"{name} not installed (pip install {package}, in the dev extras)")
    return found


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_script(name: str) -> ModuleType:
    """Import scripts/NAME.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"deploy_scripts_{name}", SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def validate_kubernetes(documents: list[dict[str, Any]]) -> None:
    """Strict schema validation (unknown fields are errors) against KUBERNETES_VERSION."""
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (dev extras)"
    )
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)

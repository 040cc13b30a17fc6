"""The one place that touches CrypTen's internals so that CrypTen 0.4.1 runs on torch 2.13.

CrypTen 0.4.1 (the last release) imports
``torch.onnx._internal.registration.registry`` when the older
``torch.onnx.symbolic_registry`` is missing. torch 2.13 has neither, so
``import crypten`` fails. CrypTen only binds the name at import time and,
on that code path, registers its ONNX symbolics through the public
``torch.onnx.register_custom_op_symbolic`` instead; a stand-in module that
provides the name is therefore enough. The stand-in is registered only when
the real module cannot be found, and only once.

Everything else that must reach into CrypTen (installing the project's own
communicator, the legacy ONNX exporter for ``crypten.nn.from_pytorch``) is
added here too, so a CrypTen upgrade has one file to review.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

__all__ = ["STAND_IN_MODULES", "import_crypten"]

_REGISTRATION = "torch.onnx._internal.registration"
STAND_IN_MODULES = (_REGISTRATION,)
_STAND_IN_MARK = "__mpc_ledger_stand_in__"


def _module_exists(name: str) -> bool:
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _install_registration_stand_in() -> None:
    if _module_exists(_REGISTRATION):
        return
    stand_in = types.ModuleType(_REGISTRATION)
    stand_in.__doc__ = "mpc-ledger stand-in: CrypTen 0.4.1 imports `registry` from here."
    stand_in.registry = None  # type: ignore[attr-defined]  # bound by CrypTen, never called
    setattr(stand_in, _STAND_IN_MARK, True)
    sys.modules[_REGISTRATION] = stand_in


def import_crypten() -> Any:
    """Import CrypTen on this torch, applying the compatibility shims first. Idempotent."""
    importlib.import_module("torch.onnx")
    _install_registration_stand_in()
    return importlib.import_module("crypten")

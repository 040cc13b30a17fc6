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

__all__ = [
    "CRYPTEN_PROVIDER_NAMES",
    "STAND_IN_MODULES",
    "import_crypten",
    "install_communicator",
    "set_tuple_provider",
]

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


# Our provider names -> CrypTen's cfg.mpc.provider values.
CRYPTEN_PROVIDER_NAMES = {"dealer": "TTP", "trusted-first-party": "TFP"}


def install_communicator(communicator_class: type, torch_distributed_stand_in: object) -> Any:
    """Make CrypTen use ``communicator_class`` instead of torch.distributed. Idempotent.

    CrypTen 0.4.1 looks the class up by the name ``DistributedCommunicator``
    in two modules (``crypten.communicator``, whose ``get``/``_init`` read it
    as a module global, and ``crypten.mpc.context``), so both names are
    rebound. Its dealer module (``crypten.mpc.provider.ttp_provider``) also
    calls ``torch.distributed`` directly for the seed exchange; that module's
    ``dist`` is pointed at ``torch_distributed_stand_in``. The ONNX export
    behind ``crypten.nn.from_pytorch`` is switched to the legacy exporter.
    Must run before ``crypten.init()``; returns the crypten module.
    """
    crypten = import_crypten()
    communicator_package = importlib.import_module("crypten.communicator")
    context = importlib.import_module("crypten.mpc.context")
    ttp_provider = importlib.import_module("crypten.mpc.provider.ttp_provider")
    if communicator_package.is_initialized():
        raise RuntimeError("install the MPC communicator before crypten.init()")
    communicator_package.DistributedCommunicator = communicator_class  # type: ignore[attr-defined]
    context.DistributedCommunicator = communicator_class  # type: ignore[attr-defined]
    ttp_provider.dist = torch_distributed_stand_in  # type: ignore[attr-defined]
    install_legacy_onnx_export()
    return crypten


def set_tuple_provider(provider: str) -> None:
    """Point CrypTen's config at the dealer ("TTP") or trusted first party ("TFP")."""
    if provider not in CRYPTEN_PROVIDER_NAMES:
        raise ValueError(
            f"unknown tuple provider {provider!r}; known: {list(CRYPTEN_PROVIDER_NAMES)}"
        )
    crypten = import_crypten()
    crypten.cfg.mpc.provider = CRYPTEN_PROVIDER_NAMES[provider]


def install_legacy_onnx_export() -> None:
    """``crypten.nn.from_pytorch`` on torch 2.13: export with the legacy (TorchScript) exporter.

    torch 2.13's ``torch.onnx.export`` defaults to the dynamo exporter, whose
    graphs CrypTen's converter and symbolic overrides do not understand;
    ``dynamo=False`` selects the exporter CrypTen was written against.
    """
    import_crypten()
    converter = importlib.import_module("crypten.nn.onnx_converter")
    if getattr(converter, "_export_pytorch_model", None) is None:
        raise RuntimeError("crypten.nn.onnx_converter has no _export_pytorch_model to replace")
    if getattr(converter._export_pytorch_model, _STAND_IN_MARK, False):
        return
    torch = importlib.import_module("torch")

    def export_pytorch_model(f: Any, pytorch_model: Any, dummy_input: Any) -> Any:
        torch.onnx.export(
            pytorch_model,
            dummy_input,
            f,
            do_constant_folding=False,
            export_params=True,
            input_names=["input"],
            operator_export_type=torch.onnx.OperatorExportTypes.ONNX,
            output_names=["output"],
            opset_version=converter._OPSET_VERSION,
            dynamo=False,
        )
        return f

    setattr(export_pytorch_model, _STAND_IN_MARK, True)
    converter._export_pytorch_model = export_pytorch_model  # type: ignore[attr-defined]

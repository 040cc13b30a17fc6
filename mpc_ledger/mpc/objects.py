"""The safe encoding of the Python objects CrypTen exchanges (never pickle).

CrypTen's `send_obj`/`recv_obj`/`broadcast_obj` carry sizes (`torch.Size`),
the dealer's requests (a dict of a function name, a device string, argument
tuples of sizes and op names, keyword dicts of ints), seeds, the string
"terminate", None, and, from `crypten.load_from_party`, a tensor (the
source's tensor zeroed: its dtype and shape are what the others learn).
Those map onto `MpcObject`; anything else (a class instance, a module, a
function, bytes) is refused with `ObjectEncodingError` naming the type,
before it leaves the process.

Rules and bounds, for encoding and decoding alike:

* An int travels as int64, or, from 2**63 to 2**64 - 1, as uint64 (torch
  hands out generator seeds as unsigned 64-bit values); anything wider or
  below -2**63 is refused. A uint64 below 2**63 from a peer is refused too:
  each int has one encoding, as frames are hashed.
* A tensor is a `TensorSpec` (a dtype of `frames.DTYPES`, at most
  `frames.DIMS_MAX` dimensions) and its raw little-endian bytes, exactly as
  many as the spec declares; all the tensors of one object together hold at
  most `TENSOR_MAX_BYTES`. An object travels whole in the first chunk of its
  frame (only a tensor frame's data is split), so it must fit what the relay
  carries per chunk; a larger tensor is shared as a tensor, e.g.
  ``crypten.cryptensor(x, src=...)``.
* Containers nest at most `DEPTH_MAX` levels and hold at most `ITEMS_MAX`.

Decoding a peer's value builds only these types, each tensor its own copy;
a malformed one raises `ObjectEncodingError` with the reason. Error texts
name types, sizes and shapes, never a value: the reason may reach the peers.
"""

from __future__ import annotations

from typing import Any

import torch

from mpc_ledger.mpc.frames import (
    CHUNK_BYTES,
    FrameError,
    data_problem,
    decode_tensor,
    encode_tensor,
    spec_problem,
    spec_size_bytes,
)
from mpc_ledger.proto.v1 import mpc_pb2

__all__ = [
    "DEPTH_MAX",
    "ITEMS_MAX",
    "TENSOR_MAX_BYTES",
    "ObjectEncodingError",
    "decode_object",
    "encode_object",
]

DEPTH_MAX = 8
ITEMS_MAX = 10_000
# All tensors of one object together: half of what the relay carries per chunk
# (relay.RELAYED_FRAME_MAX_BYTES, 8 MiB), so the rest of the object always fits.
TENSOR_MAX_BYTES = CHUNK_BYTES
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1
_ALLOWED = "None, bool, int, float, str, list, tuple, dict with str keys, torch.Size, torch.Tensor"


class ObjectEncodingError(Exception):
    """A value that is not one of the object types the MPC transport carries."""


class _TensorBudget:
    """The tensor bytes one object may still carry."""

    def __init__(self) -> None:
        self.left_bytes = TENSOR_MAX_BYTES

    def charge(self, size_bytes: int) -> None:
        if size_bytes > self.left_bytes:
            raise ObjectEncodingError(
                f"tensors of more than {TENSOR_MAX_BYTES} bytes in one object (a larger "
                "tensor is shared as a tensor, e.g. crypten.cryptensor(x, src=...))"
            )
        self.left_bytes -= size_bytes


def encode_object(value: Any) -> mpc_pb2.MpcObject:
    """The `MpcObject` for ``value``; ObjectEncodingError for anything outside the rules."""
    return _encode(value, 0, _TensorBudget())


def decode_object(message: mpc_pb2.MpcObject) -> Any:
    """The Python value of a peer's object; ObjectEncodingError if it is malformed."""
    return _decode(message, 0, _TensorBudget())


# --- encoding ----------------------------------------------------------------------------


def _encode(value: Any, depth: int, budget: _TensorBudget) -> mpc_pb2.MpcObject:
    if depth > DEPTH_MAX:
        raise ObjectEncodingError(f"object nested deeper than {DEPTH_MAX} levels")
    out = mpc_pb2.MpcObject()
    if value is None:
        out.none = True
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, torch.Size):
        out.size_value.dims.extend(int(d) for d in value)
    elif isinstance(value, int):
        _encode_int(value, out)
    elif isinstance(value, float):
        out.float_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, torch.Tensor):
        _encode_tensor(value, out.tensor_value, budget)
    elif isinstance(value, list | tuple):
        _encode_sequence(value, out, depth, budget)
    elif isinstance(value, dict):
        _encode_dict(value, out, depth, budget)
    else:
        raise ObjectEncodingError(
            f"objects of type {type(value).__name__} cannot be sent over the MPC transport "
            f"(allowed: {_ALLOWED})"
        )
    return out


def _encode_int(value: int, out: mpc_pb2.MpcObject) -> None:
    if _INT64_MIN <= value <= _INT64_MAX:
        out.int_value = value
    elif _INT64_MAX < value <= _UINT64_MAX:
        out.uint_value = value
    else:
        raise ObjectEncodingError(
            f"an integer of {value.bit_length()} bits does not fit in 64 bits "
            "(int64, or unsigned up to 2**64 - 1)"
        )


def _encode_tensor(tensor: torch.Tensor, out: mpc_pb2.MpcTensor, budget: _TensorBudget) -> None:
    if tensor.layout != torch.strided:
        raise ObjectEncodingError(f"a {tensor.layout} tensor cannot be sent (only dense ones)")
    budget.charge(tensor.nelement() * tensor.element_size())  # before copying any bytes
    try:
        spec, raw = encode_tensor(tensor)
    except FrameError as exc:
        raise ObjectEncodingError(str(exc)) from None
    out.spec.CopyFrom(spec)
    out.data = raw


def _encode_sequence(
    value: list[Any] | tuple[Any, ...], out: mpc_pb2.MpcObject, depth: int, budget: _TensorBudget
) -> None:
    if len(value) > ITEMS_MAX:
        raise ObjectEncodingError(f"sequence of {len(value)} items (limit {ITEMS_MAX})")
    target = out.tuple_value if isinstance(value, tuple) else out.list_value
    target.SetInParent()
    for item in value:
        target.items.append(_encode(item, depth + 1, budget))


def _encode_dict(
    value: dict[Any, Any], out: mpc_pb2.MpcObject, depth: int, budget: _TensorBudget
) -> None:
    if len(value) > ITEMS_MAX:
        raise ObjectEncodingError(f"dict of {len(value)} entries (limit {ITEMS_MAX})")
    out.dict_value.SetInParent()
    for key, item in value.items():
        if not isinstance(key, str):
            raise ObjectEncodingError(f"a dict key of type {type(key).__name__} is not a string")
        entry = out.dict_value.entries.add(key=key)
        entry.value.CopyFrom(_encode(item, depth + 1, budget))


# --- decoding (a peer's bytes) -----------------------------------------------------------


def _decode(message: mpc_pb2.MpcObject, depth: int, budget: _TensorBudget) -> Any:
    if depth > DEPTH_MAX:
        raise ObjectEncodingError(f"object nested deeper than {DEPTH_MAX} levels")
    which = message.WhichOneof("value")
    if which == "none":
        return None
    if which in ("bool_value", "int_value", "float_value", "string_value"):
        return getattr(message, which)
    if which == "uint_value":
        if message.uint_value <= _INT64_MAX:
            raise ObjectEncodingError("an unsigned integer below 2**63 (that is an int64)")
        return message.uint_value
    if which == "size_value":
        return torch.Size(list(message.size_value.dims))
    if which == "tensor_value":
        return _decode_tensor(message.tensor_value, budget)
    if which in ("list_value", "tuple_value"):
        items = getattr(message, which).items
        if len(items) > ITEMS_MAX:
            raise ObjectEncodingError(f"sequence of {len(items)} items (limit {ITEMS_MAX})")
        values = [_decode(item, depth + 1, budget) for item in items]
        return tuple(values) if which == "tuple_value" else values
    if which == "dict_value":
        return _decode_dict(message.dict_value, depth, budget)
    raise ObjectEncodingError("object without a value")


def _decode_tensor(message: mpc_pb2.MpcTensor, budget: _TensorBudget) -> torch.Tensor:
    problem = spec_problem(message.spec)
    if problem is None:
        budget.charge(spec_size_bytes(message.spec))  # the declared size, before the bytes
        problem = data_problem(message.spec, message.data)
    if problem is not None:
        raise ObjectEncodingError(f"tensor: {problem}")
    return decode_tensor(message.spec, message.data)


def _decode_dict(message: mpc_pb2.MpcObjectDict, depth: int, budget: _TensorBudget) -> Any:
    entries = message.entries
    if len(entries) > ITEMS_MAX:
        raise ObjectEncodingError(f"dict of {len(entries)} entries (limit {ITEMS_MAX})")
    result: dict[str, Any] = {}
    for entry in entries:
        if entry.key in result:
            raise ObjectEncodingError(f"dict key {entry.key[:32]!r} appears twice")
        result[entry.key] = _decode(entry.value, depth + 1, budget)
    return result

"""The safe encoding of the few Python objects CrypTen exchanges (never pickle).

CrypTen's `send_obj`/`recv_obj`/`broadcast_obj` carry sizes (`torch.Size`),
the dealer's requests (a dict of a function name, a device string, argument
tuples of sizes and op names, keyword dicts of ints), seeds, the string
"terminate" and None. Those map onto `MpcObject`; anything else (a class
instance, a function, a tensor, bytes) is refused with `ObjectEncodingError`
naming the type, before it leaves the process. Decoding a peer's value builds
only these types, bounded in depth and size.
"""

from __future__ import annotations

from typing import Any

import torch

from mpc_ledger.proto.v1 import mpc_pb2

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "ObjectEncodingError", "decode_object", "encode_object"]

MAX_DEPTH = 8
MAX_ITEMS = 10_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class ObjectEncodingError(Exception):
    """A value that is not one of the object types the MPC transport carries."""


def encode_object(value: Any, _depth: int = 0) -> mpc_pb2.MpcObject:
    if _depth > MAX_DEPTH:
        raise ObjectEncodingError(f"object nested deeper than {MAX_DEPTH} levels")
    out = mpc_pb2.MpcObject()
    if value is None:
        out.none = True
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, torch.Size):
        out.size_value.dims.extend(int(d) for d in value)
    elif isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ObjectEncodingError(f"integer {value} does not fit in 64 bits")
        out.int_value = value
    elif isinstance(value, float):
        out.float_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, list | tuple):
        if len(value) > MAX_ITEMS:
            raise ObjectEncodingError(f"sequence of {len(value)} items (limit {MAX_ITEMS})")
        target = out.tuple_value if isinstance(value, tuple) else out.list_value
        target.SetInParent()
        for item in value:
            target.items.append(encode_object(item, _depth + 1))
    elif isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise ObjectEncodingError(f"dict of {len(value)} entries (limit {MAX_ITEMS})")
        out.dict_value.SetInParent()
        for key, item in value.items():
            if not isinstance(key, str):
                raise ObjectEncodingError(f"dict key {key!r} is not a string")
            entry = out.dict_value.entries.add(key=key)
            entry.value.CopyFrom(encode_object(item, _depth + 1))
    else:
        raise ObjectEncodingError(
            f"objects of type {type(value).__name__} cannot be sent over the MPC transport "
            "(allowed: None, bool, int, float, str, list, tuple, dict with str keys, torch.Size)"
        )
    return out


def decode_object(message: mpc_pb2.MpcObject, _depth: int = 0) -> Any:
    """The Python value of a peer's object; ObjectEncodingError if it is malformed."""
    if _depth > MAX_DEPTH:
        raise ObjectEncodingError(f"object nested deeper than {MAX_DEPTH} levels")
    which = message.WhichOneof("value")
    if which == "none":
        return None
    if which == "bool_value":
        return message.bool_value
    if which == "int_value":
        return message.int_value
    if which == "float_value":
        return message.float_value
    if which == "string_value":
        return message.string_value
    if which == "size_value":
        return torch.Size(list(message.size_value.dims))
    if which in ("list_value", "tuple_value"):
        items = getattr(message, which).items
        if len(items) > MAX_ITEMS:
            raise ObjectEncodingError(f"sequence of {len(items)} items (limit {MAX_ITEMS})")
        values = [decode_object(item, _depth + 1) for item in items]
        return tuple(values) if which == "tuple_value" else values
    if which == "dict_value":
        entries = message.dict_value.entries
        if len(entries) > MAX_ITEMS:
            raise ObjectEncodingError(f"dict of {len(entries)} entries (limit {MAX_ITEMS})")
        result: dict[str, Any] = {}
        for entry in entries:
            if entry.key in result:
                raise ObjectEncodingError(f"dict key {entry.key!r} appears twice")
            result[entry.key] = decode_object(entry.value, _depth + 1)
        return result
    raise ObjectEncodingError("object without a value")

"""The safe object encoding: what CrypTen sends round-trips; anything else is refused."""

import re

import pytest
import torch

from mpc_ledger.mpc.frames import DTYPES
from mpc_ledger.mpc.objects import (
    TENSOR_MAX_BYTES,
    ObjectEncodingError,
    decode_object,
    encode_object,
)
from mpc_ledger.proto.v1 import mpc_pb2


def round_trip(value):
    wire = encode_object(value).SerializeToString(deterministic=True)
    return decode_object(mpc_pb2.MpcObject.FromString(wire))


def test_the_dealers_request_round_trips():
    request = {
        "function": "additive",
        "device": None,
        "args": (torch.Size([4, 5]), torch.Size([5, 3]), "matmul"),
        "kwargs": {"stride": 1, "padding": [0, 1], "bias": True, "scale": 0.5},
    }
    decoded = round_trip(request)
    assert decoded == request
    assert isinstance(decoded["args"][0], torch.Size) and isinstance(decoded["args"], tuple)


@pytest.mark.parametrize("value", [None, True, -(2**63), 2**63 - 1, 1.5, "terminate", [], ()])
def test_scalars_and_empty_containers(value):
    assert round_trip(value) == value and type(round_trip(value)) is type(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (object(), "type object cannot be sent"),
        (b"raw", "type bytes"),
        (torch.zeros(2, dtype=torch.float16), "dtype torch.float16 cannot be sent"),
        (torch.zeros(2, dtype=torch.complex64), "dtype torch.complex64 cannot be sent"),
        (torch.zeros(2).to_sparse(), "torch.sparse_coo tensor cannot be sent"),
        (torch.nn.Linear(2, 1), "type Linear cannot be sent"),
        ({1: "x"}, "dict key of type int is not a string"),
        (2**64, "an integer of 65 bits does not fit in 64 bits"),
        (-(2**63) - 1, "does not fit in 64 bits"),
        (torch.zeros(TENSOR_MAX_BYTES // 8 + 1, dtype=torch.int64), "more than 4194304 bytes"),
        ([torch.zeros(TENSOR_MAX_BYTES // 2, dtype=torch.uint8)] * 3, "in one object"),
        ([[[[[[[[[[1]]]]]]]]]], "nested deeper"),
    ],
)
def test_other_objects_are_refused_before_sending(value, reason):
    with pytest.raises(ObjectEncodingError, match=re.escape(reason)):
        encode_object(value)


def test_a_peers_malformed_object_is_refused():
    with pytest.raises(ObjectEncodingError, match="without a value"):
        decode_object(mpc_pb2.MpcObject())
    duplicated = mpc_pb2.MpcObject()
    duplicated.dict_value.entries.add(key="k").value.none = True
    duplicated.dict_value.entries.add(key="k").value.none = True
    with pytest.raises(ObjectEncodingError, match="appears twice"):
        decode_object(duplicated)


def allowed_tensors():
    """One tensor of each dtype the transport carries, and 0-d and empty ones."""
    tensors = {
        name: torch.arange(-3, 3).reshape(2, 3).to(dtype) for name, (dtype, _) in DTYPES.items()
    }
    tensors["uint8"] = torch.tensor([[0, 1, 255], [7, 128, 9]], dtype=torch.uint8)
    tensors["0-d"] = torch.tensor(2.5, dtype=torch.float64)
    tensors["empty"] = torch.zeros(0, 4, dtype=torch.int32)
    tensors["non-contiguous"] = torch.arange(12.0).reshape(3, 4).t()
    return tensors


@pytest.mark.parametrize("name", list(allowed_tensors()))
def test_tensors_of_every_allowed_dtype_round_trip(name):
    tensor = allowed_tensors()[name]
    decoded = round_trip(tensor)
    assert decoded.dtype == tensor.dtype and decoded.shape == tensor.shape
    assert torch.equal(decoded, tensor)
    decoded.zero_()  # a writable copy of its own


def test_a_dict_of_tensors_and_a_gradient_tensor_round_trip_as_plain_tensors():
    weights = torch.ones(2, 2, requires_grad=True)
    decoded = round_trip({"weight": weights, "bias": torch.zeros(2), "steps": 3})
    assert torch.equal(decoded["weight"], torch.ones(2, 2)) and not decoded["weight"].requires_grad
    assert torch.equal(decoded["bias"], torch.zeros(2)) and decoded["steps"] == 3


@pytest.mark.parametrize(
    "seed", [2**63, 2**64 - 1, torch.Generator().manual_seed(2**64 - 7).initial_seed()]
)
def test_unsigned_64_bit_seeds_round_trip(seed):
    assert round_trip(seed) == seed and type(round_trip(seed)) is int


def test_ints_that_fit_int64_keep_their_encoding():
    """Transcripts hash frames: an old value must encode to the bytes it always did."""
    assert encode_object(2**63 - 1).WhichOneof("value") == "int_value"
    assert encode_object(2**63).WhichOneof("value") == "uint_value"


def tensor_object(dtype="float32", shape=(2,), data=b"\x00" * 8):
    message = mpc_pb2.MpcObject()
    message.tensor_value.spec.dtype = dtype
    message.tensor_value.spec.shape.extend(shape)
    message.tensor_value.data = data
    return message


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (tensor_object(data=b"\x00" * 7), "spec declares 8 bytes but 7 came"),
        (tensor_object(data=b"\x00" * 9), "spec declares 8 bytes but 9 came"),
        (tensor_object(dtype="object"), "dtype 'object' is not one of"),
        (tensor_object(dtype="float16"), "dtype 'float16' is not one of"),
        (tensor_object(shape=(2, -1)), "negative dimension"),
        (tensor_object(shape=(1,) * 17, data=b"\x00" * 4), "17 dimensions"),
        (tensor_object(shape=(2**40, 2**40)), "more than 4194304 bytes"),
        (tensor_object(dtype="bool", shape=(2,), data=b"\x01\x02"), "neither 0 nor 1"),
        (mpc_pb2.MpcObject(uint_value=5), "unsigned integer below 2**63"),
    ],
)
def test_a_peers_malformed_tensor_or_int_is_refused_with_the_reason(message, reason):
    wire = message.SerializeToString()
    with pytest.raises(ObjectEncodingError, match=re.escape(reason)):
        decode_object(mpc_pb2.MpcObject.FromString(wire))


def test_a_peers_tensors_are_bounded_together_in_one_object():
    half = tensor_object(dtype="uint8", shape=(TENSOR_MAX_BYTES // 2 + 1,))
    half.tensor_value.data = b"\x00" * (TENSOR_MAX_BYTES // 2 + 1)
    message = mpc_pb2.MpcObject()
    message.list_value.items.extend([half, half])
    with pytest.raises(ObjectEncodingError, match="in one object"):
        decode_object(message)
    assert decode_object(half).nelement() == TENSOR_MAX_BYTES // 2 + 1

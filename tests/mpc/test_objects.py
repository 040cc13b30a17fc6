"""The safe object encoding: what CrypTen sends round-trips; anything else is refused."""

import pytest
import torch

from mpc_ledger.mpc.objects import ObjectEncodingError, decode_object, encode_object
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
        (torch.zeros(2), "type Tensor"),
        ({1: "x"}, "key 1 is not a string"),
        (2**64, "does not fit in 64 bits"),
        ([[[[[[[[[[1]]]]]]]]]], "nested deeper"),
    ],
)
def test_other_objects_are_refused_before_sending(value, reason):
    with pytest.raises(ObjectEncodingError, match=reason):
        encode_object(value)


def test_a_peers_malformed_object_is_refused():
    with pytest.raises(ObjectEncodingError, match="without a value"):
        decode_object(mpc_pb2.MpcObject())
    duplicated = mpc_pb2.MpcObject()
    duplicated.dict_value.entries.add(key="k").value.none = True
    duplicated.dict_value.entries.add(key="k").value.none = True
    with pytest.raises(ObjectEncodingError, match="appears twice"):
        decode_object(duplicated)

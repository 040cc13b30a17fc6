"""The model's canonical encoding: its hash is the ledger's model hash, and decoding it
refuses anything that is not one."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from mpc_ledger.mpc.model_codec import (
    ModelFormatError,
    decode_model,
    encode_model,
    model_digest_of_encoding,
)
from mpc_ledger.mpc.training import model_digest

PARAMETERS = {"weight": [[0.5, -1.25, 3.0]], "bias": [0.1]}


def test_the_encodings_hash_is_the_model_digest_and_it_decodes_back():
    encoded = b"".join(encode_model(PARAMETERS))
    assert model_digest_of_encoding(iter([encoded])) == model_digest(PARAMETERS)
    decoded = decode_model(encoded)
    assert list(decoded) == ["bias", "weight"]
    assert decoded["weight"].shape == (1, 3) and decoded["weight"].dtype == np.float32
    np.testing.assert_array_equal(decoded["weight"], np.float32([[0.5, -1.25, 3.0]]))


def test_one_flipped_bit_changes_the_hash():
    encoded = bytearray(b"".join(encode_model(PARAMETERS)))
    encoded[-1] ^= 1
    assert model_digest_of_encoding(iter([bytes(encoded)])) != model_digest(PARAMETERS)


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        (b"\x00\x00", "truncated"),
        (struct.pack(">I", 10_000) + b"x", "name of 10000 bytes"),
        (struct.pack(">I", 1) + b"w" + struct.pack(">I", 99), "99 dimensions"),
        (struct.pack(">I", 1) + b"w" + struct.pack(">IQ", 1, 1 << 40), "too large"),
        (b"".join(encode_model({"b": [1.0]})) + b"".join(encode_model({"a": [1.0]})), "not after"),
    ],
)
def test_what_is_not_an_encoding_is_refused_saying_where(encoded, message):
    with pytest.raises(ModelFormatError, match=message):
        decode_model(encoded)

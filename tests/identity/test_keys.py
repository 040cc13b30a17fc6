import os
import stat

import pytest

from mpc_ledger.errors import IdentityError
from mpc_ledger.identity import keys


def test_private_file_is_created_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        keys.write_private_file(tmp_path / "k", b"secret")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert keys.read_private_file(tmp_path / "k") == b"secret"


def test_existing_key_is_never_overwritten(tmp_path):
    keys.write_private_file(tmp_path / "k", b"first")
    with pytest.raises(IdentityError, match="refusing to overwrite"):
        keys.write_private_file(tmp_path / "k", b"second")
    assert (tmp_path / "k").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # no temporary file left


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_group_or_world_readable_key_is_refused(tmp_path, mode):
    path = tmp_path / "signing.key"
    keys.write_private_file(path, keys.signing_key_pem(keys.generate_signing_key()))
    path.chmod(mode)
    with pytest.raises(IdentityError) as error:
        keys.load_signing_key(path)
    assert f"{mode:04o}" in str(error.value)
    assert "chmod 600" in str(error.value)
    assert str(path) in str(error.value)


def test_signing_key_round_trips(tmp_path):
    key = keys.generate_signing_key()
    keys.write_private_file(tmp_path / "s.key", keys.signing_key_pem(key))
    assert bytes(keys.load_signing_key(tmp_path / "s.key")) == bytes(key)


def test_wrong_key_type_is_refused(tmp_path):
    keys.write_private_file(tmp_path / "t.key", keys.tls_key_pem(keys.generate_tls_key()))
    with pytest.raises(IdentityError, match="not an Ed25519 private key"):
        keys.load_signing_key(tmp_path / "t.key")


def test_garbage_key_is_refused(tmp_path):
    keys.write_private_file(tmp_path / "g.key", b"not a key")
    with pytest.raises(IdentityError, match="not a readable unencrypted PEM private key"):
        keys.load_tls_key(tmp_path / "g.key")


def test_missing_key_names_the_file(tmp_path):
    with pytest.raises(IdentityError, match="file not found"):
        keys.load_signing_key(tmp_path / "absent.key")

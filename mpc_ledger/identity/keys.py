"""Private key files: created 0600 on the party's own machine, refused when others can read them.

Signing keys are Ed25519 (PyNaCl signs and verifies); on disk they are PKCS#8
PEM, so `openssl pkey -in signing.key -pubout` works on them. TLS keys are
ECDSA P-256 PKCS#8 PEM, what gRPC's TLS stack accepts everywhere.

A private file is written to a temporary name with mode 0600 and linked into
place, so it is never visible half-written or with a wider mode, and an
existing key is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mpc_ledger.errors import IdentityError

__all__ = [
    "generate_signing_key",
    "generate_tls_key",
    "load_signing_key",
    "load_tls_key",
    "read_private_file",
    "signing_key_pem",
    "tls_key_pem",
    "write_private_file",
    "write_public_file",
]

PRIVATE_MODE = 0o600


def generate_signing_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


def generate_tls_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def signing_key_pem(key: nacl.signing.SigningKey) -> bytes:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(key))
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def tls_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 holding ``data``; refuse to overwrite."""
    _write_new_file(path, data, PRIVATE_MODE)


def write_public_file(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0644) holding ``data``; refuse to overwrite."""
    _write_new_file(path, data, 0o644)


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    if path.exists():
        raise IdentityError("already exists; refusing to overwrite it", path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed a public file
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile: never overwrite
    except FileExistsError:
        raise IdentityError("already exists; refusing to overwrite it", path=path) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_private_file(path: Path, *, field: str | None = None) -> bytes:
    """Read a private file, refusing it when group or others may read or write it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise IdentityError("file not found", path=path, field=field) from None
    if not stat.S_ISREG(info.st_mode):
        raise IdentityError("not a regular file", path=path, field=field)
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise IdentityError(
            f"private key file has mode {mode:04o} (group/others can access it); "
            f"refusing to use it. Fix with: chmod 600 {path}",
            path=path,
            field=field,
        )
    return path.read_bytes()


def load_signing_key(path: Path, *, field: str | None = None) -> nacl.signing.SigningKey:
    key = _load_private_pem(path, field)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise IdentityError("not an Ed25519 private key", path=path, field=field)
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return nacl.signing.SigningKey(raw)


def load_tls_key(path: Path, *, field: str | None = None) -> ec.EllipticCurvePrivateKey:
    key = _load_private_pem(path, field)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError("not an ECDSA private key", path=path, field=field)
    return key


def _load_private_pem(path: Path, field: str | None) -> object:
    data = read_private_file(path, field=field)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(
            f"not a readable unencrypted PEM private key ({exc})", path=path, field=field
        ) from None

"""X.509 for party-to-party mTLS.

Each member runs its own small certificate authority. The CA certificate is
public and goes into the genesis (with its SHA-256 fingerprint); the CA key
stays on the member's machine and issues the member's TLS leaf certificate.
A leaf names its member in the subject common name and as a DNS subject
alternative name, which is also the TLS target name peers check. Rotating a
leaf therefore needs no new genesis; replacing a CA does.

A peer is a member only if its leaf certificate was issued by the CA that the
genesis lists for the member the leaf names (see `mpc_ledger.net.mtls`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "certificate_fingerprint",
    "der_to_pem",
    "issuance_problem",
    "issue_leaf_certificate",
    "issue_user_certificate",
    "leaf_member_id",
    "make_ca_certificate",
    "pem_to_der",
    "spki_sha256",
]

CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 365


def make_ca_certificate(
    member_id: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    now: dt.datetime,
    days: int = CA_VALIDITY_DAYS,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mpc-ledger CA for {member_id}")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_leaf_certificate(
    member_id: str,
    leaf_public_key: ec.EllipticCurvePublicKey,
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    now: dt.datetime,
    days: int = LEAF_VALIDITY_DAYS,
    extra_hosts: tuple[str, ...] = (),
    not_valid_before: dt.datetime | None = None,
) -> x509.Certificate:
    """A TLS client+server certificate for ``member_id`` issued by its CA."""
    names: list[x509.GeneralName] = [x509.DNSName(member_id)]
    for host in extra_hosts:
        if host == member_id:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    start = not_valid_before if not_valid_before is not None else now - dt.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_id)]))
        .issuer_name(ca_certificate.subject)
        .public_key(leaf_public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def issue_user_certificate(
    user_id: str,
    user_public_key: ec.EllipticCurvePublicKey,
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    now: dt.datetime,
    days: int = LEAF_VALIDITY_DAYS,
) -> x509.Certificate:
    """A TLS client certificate for a member's user ("member/name"), issued by the member's CA."""
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)]))
        .issuer_name(ca_certificate.subject)
        .public_key(user_public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def spki_sha256(public_key: CertificatePublicKeyTypes) -> bytes:
    """SHA-256 of a TLS public key's DER SubjectPublicKeyInfo (what a user's binding pins)."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def leaf_member_id(certificate: x509.Certificate) -> str | None:
    """The member a leaf certificate names (its common name), if exactly one."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        return None
    value = names[0].value
    return value if isinstance(value, str) else None


def issuance_problem(leaf: x509.Certificate, ca_certificate_der: bytes) -> str | None:
    """None when ``leaf`` was signed by this CA; otherwise why not."""
    ca = x509.load_der_x509_certificate(ca_certificate_der)
    try:
        leaf.verify_directly_issued_by(ca)
    except InvalidSignature:
        return "signature does not verify under that CA"
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def certificate_fingerprint(certificate: x509.Certificate) -> bytes:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()


def der_to_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def pem_to_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)

"""A throwaway test PKI made with `cryptography`: a CA, server certificates (valid,
expired, wrong name) and a client certificate (its key also encrypted with the password
CLIENT_KEY_PASSWORD), written as PEM files."""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


CLIENT_KEY_PASSWORD = "client-pw"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory: Path, servers: dict[str, list[str]] | None = None) -> dict[str, Path]:
    """The CA and the leaves below, plus a valid server leaf per entry of ``servers``
    (leaf name -> its names), each as ``NAME_cert`` and ``NAME_key``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = _key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("corenet test CA")).issuer_name(_name("corenet test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = {"ca": directory / "ca.pem"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(name: str, sans: list, start, end,
             usage=ExtendedKeyUsageOID.SERVER_AUTH) -> None:
        key = _key()
        alt = [x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() or ":" in s
               else x509.DNSName(s) for s in sans]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(sans[0])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        out[name + "_cert"] = directory / f"{name}.pem"
        out[name + "_key"] = directory / f"{name}.key"
        out[name + "_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[name + "_key"].write_bytes(_pem_key(key))
        out[name + "_key_encrypted"] = directory / f"{name}.enc.key"
        out[name + "_key_encrypted"].write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(CLIENT_KEY_PASSWORD.encode())))
        out[name + "_both"] = directory / f"{name}.both.pem"
        out[name + "_both"].write_bytes(out[name + "_cert"].read_bytes() + _pem_key(key))

    day = datetime.timedelta(days=1)
    leaf("valid", ["localhost", "127.0.0.1", "127.0.0.2", "::1", "www.corenet.example"],
         now - day, now + 30 * day)
    leaf("expired", ["localhost", "127.0.0.1"], now - 30 * day, now - day)
    leaf("wrongname", ["wrong.example"], now - day, now + 30 * day)
    leaf("client", ["client.corenet.test"], now - day, now + 30 * day,
         ExtendedKeyUsageOID.CLIENT_AUTH)
    for name, sans in (servers or {}).items():
        leaf(name, sans, now - day, now + 30 * day)
    return out

"""Throwaway certificates for the encrypted-DNS and control-channel tests: a CA, and server or
client certificates it signs (for the name ``dns.test`` and the address 127.0.0.1), written
as PEM files. The CA's own certificate can also serve, as unbound-control-setup's does: the
control server's certificate is self-signed and signs the clients'."""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

SERVER_NAME = "dns.test"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CA:
    def __init__(self, directory: Path, cn: str = "corenet test CA") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .add_extension(x509.KeyUsage(
                         digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=True,
                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                         decipher_only=False), True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                         self.key.public_key()), False)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.dir / "ca.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def self_signed(self) -> tuple[Path, Path]:
        """The CA's own certificate as a server's: (certificate file, key file)."""
        keyfile = self.dir / "ca.key"
        keyfile.write_bytes(_key_pem(self.key))
        return self.pem, keyfile

    def issue(self, stem: str, kind: str = "ec", purpose: str = "server") -> tuple[Path, Path]:
        """A certificate for dns.test and 127.0.0.1 with a new key, P-256 ("ec") or RSA 2048
        ("rsa"), for a TLS ``purpose`` "server" or "client": (chain file, key file)."""
        usage = {"server": x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                 "client": x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH}[purpose]
        if kind == "rsa":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name(SERVER_NAME))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName(SERVER_NAME),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                # what Python 3.13's strict verification (VERIFY_X509_STRICT) asks for
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .add_extension(x509.ExtendedKeyUsage([usage]), False)
                .sign(self.key, hashes.SHA256()))
        pem, keyfile = self.dir / f"{stem}.pem", self.dir / f"{stem}.key"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyfile.write_bytes(_key_pem(key))
        return pem, keyfile


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())

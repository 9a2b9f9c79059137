"""A throwaway test PKI for the simulated VTN: a CA, a VTN server cert and a VEN client cert.

Keys are EC P-256 because openleadr signs every message with them, and EC signing costs a few
milliseconds where RSA-2048 costs over a hundred. Nothing here is fit for production use.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class SimTls:
    """PEM file paths for a mutually authenticated VTN.

    ``ven_cert``/``ven_key`` are the client credentials a VEN should use. When the VTN is given a
    ``SimTls`` with ``ven_cert`` set, it accepts registrations only from that certificate;
    with ``ven_cert=None`` it accepts any certificate signed by the CA and pins the one seen
    at registration.
    """

    ca_cert: Path
    vtn_cert: Path
    vtn_key: Path
    ven_cert: Path | None = None
    ven_key: Path | None = None
    passphrase: str | None = None

    @property
    def vtn_fingerprint(self) -> str:
        """OpenADR fingerprint of the VTN certificate, for a VEN to pin."""
        return fingerprint(self.vtn_cert)

    @property
    def ven_fingerprint(self) -> str | None:
        """OpenADR fingerprint of the VEN certificate, if there is one."""
        return fingerprint(self.ven_cert) if self.ven_cert is not None else None


def fingerprint(cert_path: Path | str) -> str:
    """Return the OpenADR fingerprint of a PEM certificate file.

    The format is openleadr's: the last 10 bytes of SHA-256 over the DER encoding, as upper-case
    hex pairs joined by colons (e.g. ``4B:1A:8B:4B:F8:E5:35:55:3F:18``).
    """
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return ":".join(f"{byte:02X}" for byte in digest[-10:])


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "loadshed_ven test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, passphrase: str | None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer_name: x509.Name | None,
    *,
    valid_for: timedelta,
    server_ip: str | None = None,
    client: bool = False,
) -> x509.Certificate:
    """Build a certificate; ``issuer_name=None`` makes a self-signed CA."""
    now = datetime.now(UTC)
    is_ca = issuer_name is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name or _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
    if server_ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(server_ip)), x509.DNSName("localhost")]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def generate_pki(
    directory: Path | str,
    *,
    passphrase: str | None = None,
    server_ip: str = "127.0.0.1",
    ven_name: str = "sim-ven",
    valid_for: timedelta = timedelta(days=2),
) -> SimTls:
    """Create a CA, a VTN server certificate (IP SAN ``server_ip``) and a VEN client certificate.

    Writes ``ca.pem``, ``vtn.pem``, ``vtn.key``, ``ven.pem`` and ``ven.key`` into ``directory``
    (created if missing). Private keys are encrypted with ``passphrase`` when one is given.
    """
    if not ipaddress.ip_address(server_ip).is_loopback:
        raise ValueError(f"server_ip must be a loopback address, got {server_ip}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("loadshed_ven test CA", ca_key, ca_key, None, valid_for=valid_for)
    vtn_key = ec.generate_private_key(ec.SECP256R1())
    vtn_cert = _issue(
        "SIMVTN", vtn_key, ca_key, ca_cert.subject, valid_for=valid_for, server_ip=server_ip
    )
    ven_key = ec.generate_private_key(ec.SECP256R1())
    ven_cert = _issue(ven_name, ven_key, ca_key, ca_cert.subject, valid_for=valid_for, client=True)

    paths = {name: out / name for name in ("ca.pem", "vtn.pem", "vtn.key", "ven.pem", "ven.key")}
    _write_cert(paths["ca.pem"], ca_cert)
    _write_cert(paths["vtn.pem"], vtn_cert)
    _write_key(paths["vtn.key"], vtn_key, passphrase)
    _write_cert(paths["ven.pem"], ven_cert)
    _write_key(paths["ven.key"], ven_key, passphrase)
    return SimTls(
        ca_cert=paths["ca.pem"],
        vtn_cert=paths["vtn.pem"],
        vtn_key=paths["vtn.key"],
        ven_cert=paths["ven.pem"],
        ven_key=paths["ven.key"],
        passphrase=passphrase,
    )

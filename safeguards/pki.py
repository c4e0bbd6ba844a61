"""Certificates for every server in the stack.

OpenBao's PKI engine is the certificate authority. Its issuing CA is an intermediate signed
by a root that exists only during bootstrap: the root key is written 0600 while bootstrap
runs (so a crash can resume) and deleted once the intermediate is signed. OpenBao's own
listener starts from a bootstrap certificate signed by the same root, so one CA bundle
verifies every server. This module never turns verification off.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import hvac
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from safeguards.files import write_private
from safeguards.openbao import openbao_errors
from safeguards.settings import Settings

ROOT_NAME = "hipaa-mlops root CA"
# The TLS 1.2 suites every server may offer: forward-secret (ECDHE) with an AEAD cipher.
# No CBC, no SHA-1 MAC, no CCM_8; TLS 1.3's suites are all AEAD and stay as they are.
# AEAD_CIPHERS is the OpenSSL cipher string for the Python servers (uvicorn, BentoML) and
# PostgreSQL; AEAD_SUITES names the same suites as Go's crypto/tls does (IANA names), for
# OpenBao, SeaweedFS and Prometheus.
AEAD_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
AEAD_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)
_KEY_PEM = serialization.PrivateFormat.PKCS8


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, _KEY_PEM, serialization.NoEncryption())


def create_root(key_path: Path, cert_path: Path, days: int = 3650) -> None:
    """Create the bootstrap root CA (P-384); OpenBao's bootstrap deletes its key when done."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROOT_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA384())
    )
    write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load_root(
    key_path: Path, cert_path: Path
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, x509.load_pem_x509_certificate(cert_path.read_bytes())


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The AKI of a certificate `issuer` signs: the issuer's own SKI (RFC 5280 4.2.1.1).

    Strict path validation (OpenSSL's X509_STRICT, cryptography's verifier, sslyze)
    rejects a chain whose non-root certificates lack it; plain `openssl verify` does not.
    """
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def issue_bootstrap_server_cert(
    root_key: Path,
    root_cert: Path,
    hosts: list[str],
    key_out: Path,
    cert_out: Path,
    days: int = 90,
) -> None:
    """Sign a server certificate for OpenBao's own listener with the bootstrap root."""
    ca_key, ca_cert = _load_root(root_key, root_cert)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        if _is_ip(host):
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        else:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(_authority_key_id(ca_cert), False)
        .sign(ca_key, hashes.SHA384())
    )
    write_private(key_out, _key_pem(key))
    cert_out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def sign_intermediate(root_key: Path, root_cert: Path, csr_pem: str, days: int = 1825) -> str:
    """Sign OpenBao's intermediate CSR with the bootstrap root; returns the PEM certificate."""
    ca_key, ca_cert = _load_root(root_key, root_cert)
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), False)
        .add_extension(_authority_key_id(ca_cert), False)
        .sign(ca_key, hashes.SHA384())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def issue_server_cert(
    bao: hvac.Client,
    hosts: list[str],
    key_out: Path,
    cert_out: Path,
    ttl: str = "720h",
    role: str = "server",
) -> None:
    """Issue a certificate from OpenBao's PKI; the cert file holds the chain.

    Role ``server`` is for TLS listeners; ``internal`` also allows client authentication,
    for components that talk to each other over mutual TLS.
    """
    names = [h for h in hosts if not _is_ip(h)]
    ips = [h for h in hosts if _is_ip(h)]
    with openbao_errors(f"issuing a certificate for {hosts[0]}"):
        data = bao.secrets.pki.generate_certificate(
            role,
            names[0] if names else ips[0],
            mount_point="pki",
            extra_params={"alt_names": ",".join(names), "ip_sans": ",".join(ips), "ttl": ttl},
        )["data"]
    write_private(key_out, data["private_key"].encode())
    chain = [data["certificate"], *data.get("ca_chain", [])]
    cert_out.write_text("\n".join(c.strip() for c in chain) + "\n")


def server_files(settings: Settings, service: str, name: str | None = None) -> tuple[Path, Path]:
    """`service`'s TLS key and certificate chain (`name` for a second pair), kept in the
    service's own directory: in the compose stack that directory is the service's volume,
    which no other server mounts."""
    tls = settings.data_dir / service / "tls"
    return tls / f"{name or service}.key", tls / f"{name or service}.pem"


def issue_for(
    bao: hvac.Client,
    settings: Settings,
    service: str,
    name: str | None = None,
    role: str = "server",
) -> tuple[Path, Path]:
    """Issue `service`'s certificate for every name it is reached by (the loopback address,
    localhost, its compose service name, HIPAA_MLOPS_SERVER_NAMES) into `server_files`;
    returns (key, cert)."""
    key, cert = server_files(settings, service, name)
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    names = [settings.host, "localhost", service, *settings.extra_names]
    issue_server_cert(bao, names, key, cert, role=role)
    return key, cert


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

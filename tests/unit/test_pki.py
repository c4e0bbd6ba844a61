from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from safeguards import pki


def test_bootstrap_root_signs_a_verifiable_server_certificate(tmp_path: Path) -> None:
    root_key, root_cert = tmp_path / "root.key", tmp_path / "ca.pem"
    pki.create_root(root_key, root_cert)
    pki.issue_bootstrap_server_cert(
        root_key, root_cert, ["127.0.0.1", "localhost"], tmp_path / "s.key", tmp_path / "s.pem"
    )
    ca = x509.load_pem_x509_certificate(root_cert.read_bytes())
    cert = x509.load_pem_x509_certificate((tmp_path / "s.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    for private in (root_key, tmp_path / "s.key"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600


def _key_ids(cert: x509.Certificate) -> tuple[bytes, bytes | None]:
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    return ski.digest, aki.key_identifier


def test_every_bootstrap_certificate_has_subject_and_authority_key_ids(tmp_path: Path) -> None:
    """Strict path validation (sslyze, OpenSSL's X509_STRICT, cryptography's verifier)
    rejects a chain whose certificates lack AKI, though `openssl verify` accepts it."""
    root_key, root_cert = tmp_path / "root.key", tmp_path / "ca.pem"
    pki.create_root(root_key, root_cert)
    pki.issue_bootstrap_server_cert(
        root_key, root_cert, ["127.0.0.1", "localhost"], tmp_path / "s.key", tmp_path / "s.pem"
    )
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intermediate")]))
        .sign(intermediate_key, hashes.SHA256())
    )
    intermediate = x509.load_pem_x509_certificate(
        pki.sign_intermediate(
            root_key, root_cert, csr.public_bytes(serialization.Encoding.PEM).decode()
        ).encode()
    )
    ca = x509.load_pem_x509_certificate(root_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate((tmp_path / "s.pem").read_bytes())
    root_ski, root_aki = _key_ids(ca)
    assert root_aki == root_ski
    for cert in (leaf, intermediate):
        ski, aki = _key_ids(cert)
        assert aki == root_ski
        assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    # The same strict validator a TLS client with a custom trust store uses.
    verifier = (
        PolicyBuilder()
        .store(Store([ca]))
        .build_server_verifier(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    )
    assert verifier.verify(leaf, [])[-1] == ca
    with ssl_server(tmp_path / "s.pem", tmp_path / "s.key") as port:
        context = ssl.create_default_context(cafile=root_cert)
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_the_allowed_suites_are_forward_secret_aead_only() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(pki.AEAD_CIPHERS)
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    for cipher in tls12:
        assert cipher["kea"] == "kx-ecdhe"
        assert cipher["aead"], cipher["name"]
        assert cipher["symmetric"] in ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305")
    assert all("GCM" in s or "CHACHA20_POLY1305" in s for s in pki.AEAD_SUITES)
    assert all(s.startswith("TLS_ECDHE_") for s in pki.AEAD_SUITES)


@contextmanager
def ssl_server(cert: Path, key: Path) -> Iterator[int]:
    """A loopback TLS server for one handshake (the client reports failures); yields its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with suppress(OSError), context.wrap_socket(conn, server_side=True):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(timeout=5)
        listener.close()

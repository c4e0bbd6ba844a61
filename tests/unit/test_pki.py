from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509

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

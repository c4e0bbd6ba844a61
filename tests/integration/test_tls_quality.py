"""TLS quality on every port of the stack, scanned as a TLS scanner does.

Each server must speak TLS 1.2 with forward-secret AEAD suites only (ECDHE with AES-GCM or
ChaCha20-Poly1305), or TLS 1.3 (no CCM_8); never TLS 1.0 or 1.1. Its chain must pass
strict path validation against the stack's CA (`<data_dir>/tls/ca.pem`) alone, and its
leaf carry a Subject and an Authority Key Identifier.

The scanner is this module, not sslyze: sslyze and its OpenSSL wrapper nassl are
AGPL-3.0, which the project does not take, and sslyze 6.3.1 also wants cryptography<47.
It does what sslyze's certificate-info and TLS 1.0-1.3 suite commands do, with the
interpreter's OpenSSL (every suite it knows, at security level 0, so weak ones can be
offered): TLS 1.0 and 1.1 each offer every suite; TLS 1.2 offers every suite that is not
ECDHE+AEAD in one ClientHello, which the server must refuse (if it does not, each is
tried alone for the report), then each allowed suite alone, for the table; TLS 1.3 tries
each of its five suites alone with `openssl s_client -ciphersuites` (Python cannot choose
TLS 1.3 suites). The served chain, read with `openssl s_client -showcerts`, is checked
with cryptography's RFC 5280 path validator, and a handshake with OpenSSL's X509_STRICT
verification against ca.pem must succeed too: either rejects a missing AKI, which plain
`openssl verify` accepts.

PostgreSQL is scanned after its STARTTLS (an SSLRequest; `-starttls postgres`).
SeaweedFS's internal HTTPS (master, volume, filer) and gRPC ports (those and S3's) ask
for a client certificate (mutual TLS): the scan presents the internal one,
`seaweedfs-internal.pem`, issued by the stack's PKI, and offers ALPN h2 to gRPC. OpenBao's
cluster port (base + 1) is not scanned: it takes only raft peers, with certificates
OpenBao makes for itself.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shutil
import socket
import ssl
import struct
import subprocess
import warnings
from dataclasses import dataclass, field, replace

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from safeguards import pki
from safeguards.settings import LAKE_PORTS, PORT_OFFSETS, SERVING_PORTS, Settings
from services.supervisor import Supervisor

pytestmark = pytest.mark.integration

# Every suite OpenSSL has, weak ones included: what a scanner offers.
EVERY_SUITE = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
TLS13_SUITES = (
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
)
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
# Raised by the client before it sends anything: the scan itself is broken.
_LOCAL_FAILURES = ("NO_CIPHERS_AVAILABLE", "NO_PROTOCOLS_AVAILABLE", "NO_SUITABLE")


@dataclass(frozen=True)
class Target:
    name: str
    offset: int
    postgres: bool = False
    mutual: bool = False
    grpc: bool = False


TARGETS = (
    Target("openbao", PORT_OFFSETS["openbao"]),
    Target("seaweedfs-s3", PORT_OFFSETS["seaweedfs"]),
    Target("mlflow", PORT_OFFSETS["mlflow"]),
    Target("postgres", PORT_OFFSETS["postgres"], postgres=True),
    # A project's endpoint: its port follows the project's slot (`scans` finds it).
    Target("serving", SERVING_PORTS),
    Target("monitoring", PORT_OFFSETS["monitoring"]),
    Target("prometheus", PORT_OFFSETS["prometheus"]),
    # The home lake's internal listeners (every region's lake runs the same configuration).
    *(
        Target(f"seaweedfs-{n}", o, mutual=True, grpc=n.endswith("-grpc"))
        for n, o in LAKE_PORTS.items()
        if n != "s3"
    ),
)
NAMES = [t.name for t in TARGETS]


@dataclass
class Scan:
    port: int
    legacy: dict[str, list[str]] = field(default_factory=dict)
    tls12: list[str] = field(default_factory=list)
    tls12_forbidden: list[str] = field(default_factory=list)
    tls13: list[str] = field(default_factory=list)
    chain: list[x509.Certificate] = field(default_factory=list)


def _tls12_suites() -> tuple[list[str], list[str]]:
    """OpenSSL's TLS 1.2 suites, split into (ECDHE with AES-GCM or ChaCha20-Poly1305, rest)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers(EVERY_SUITE)
    allowed, forbidden = [], []
    for suite in context.get_ciphers():
        if suite["protocol"] == "TLSv1.3":
            continue
        good = (
            suite["kea"] == "kx-ecdhe"
            and suite["aead"]
            and suite["auth"] in ("auth-ecdsa", "auth-rsa")
            and re.fullmatch(r"aes-(128|256)-gcm|chacha20-poly1305", suite["symmetric"])
        )
        (allowed if good else forbidden).append(suite["name"])
    return allowed, forbidden


class Scanner:
    def __init__(self, settings: Settings, target: Target) -> None:
        self.host, self.target = settings.host, target
        self.port = settings.port_base + target.offset
        self.ca = settings.ca_bundle
        key, cert = pki.server_files(settings, "seaweedfs", "seaweedfs-internal")
        self.client = (cert, key)

    def _context(self, version: ssl.TLSVersion, suites: str, verify: bool) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify:
            context.load_verify_locations(self.ca)
            context.verify_flags |= ssl.VERIFY_X509_STRICT
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: the point here.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = version
        context.set_ciphers(suites)
        if self.target.mutual:
            context.load_cert_chain(*self.client)
        if self.target.grpc:
            context.set_alpn_protocols(["h2"])
        return context

    def handshake(
        self, version: ssl.TLSVersion, suites: str = EVERY_SUITE, verify: bool = False
    ) -> str | None:
        """The suite the server picks from `suites` under `version`; None if it refuses."""
        context = self._context(version, suites, verify)
        with socket.create_connection((self.host, self.port), timeout=5) as raw:
            if self.target.postgres:
                raw.sendall(_SSL_REQUEST)
                assert raw.recv(1) == b"S", "PostgreSQL refused its SSLRequest"
            try:
                with context.wrap_socket(raw, server_hostname=self.host) as tls:
                    cipher = tls.cipher()
                    assert cipher is not None
                    return cipher[0]
            except (ssl.SSLError, ConnectionError) as exc:
                if verify or any(f in str(exc) for f in _LOCAL_FAILURES):
                    raise
                return None

    def s_client(self, *options: str) -> subprocess.CompletedProcess[str]:
        command = ["openssl", "s_client", "-connect", f"{self.host}:{self.port}", *options]
        if self.target.postgres:
            command += ["-starttls", "postgres"]
        if self.target.mutual:  # the cert file holds the chain: -cert sends its leaf only
            cert, key = (str(p) for p in self.client)
            command += ["-cert", cert, "-cert_chain", cert, "-key", key]
        if self.target.grpc:
            command += ["-alpn", "h2"]
        return subprocess.run(
            command,
            input="",
            capture_output=True,
            text=True,
            errors="replace",
            timeout=20,
            check=False,
        )

    def tls13(self, suite: str) -> bool:
        done = self.s_client("-brief", "-tls1_3", "-ciphersuites", suite)
        return done.returncode == 0 and f"Ciphersuite: {suite}" in done.stderr

    def chain(self) -> list[x509.Certificate]:
        done = self.s_client("-showcerts")
        blocks = re.findall(
            r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", done.stdout, re.S
        )
        assert blocks, f"no certificate from port {self.port}: {done.stderr[-300:]}"
        return [x509.load_pem_x509_certificate(b.encode()) for b in blocks]

    def scan(self) -> Scan:
        result = Scan(self.port)
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            picked = self.handshake(version)
            if picked is not None:
                result.legacy[version.name] = [picked]
        allowed, forbidden = _tls12_suites()
        refuse = ":".join([EVERY_SUITE, *(f"!{s}" for s in allowed)])
        if self.handshake(ssl.TLSVersion.TLSv1_2, refuse) is not None:
            result.tls12_forbidden = [
                s
                for s in forbidden
                if self._tries(ssl.TLSVersion.TLSv1_2, f"{s}:@SECLEVEL=0") is not None
            ]
        result.tls12 = [s for s in allowed if self.handshake(ssl.TLSVersion.TLSv1_2, s) is not None]
        result.tls13 = [s for s in TLS13_SUITES if self.tls13(s)]
        result.chain = self.chain()
        return result

    def _tries(self, version: ssl.TLSVersion, suites: str) -> str | None:
        """A handshake with one suite the client may be unable to offer (PSK, SRP)."""
        try:
            return self.handshake(version, suites)
        except ssl.SSLError:
            return None


def _table(scans: dict[str, Scan]) -> str:
    """One line a port: what it accepts (TLS 1.2 suites shortened, forbidden ones with !)."""

    def short(suite: str) -> str:
        return re.sub(r"^ECDHE-|^TLS_|[-_]SHA(256|384)$", "", suite)

    lines = [f"{'port':<28} {'TLS 1.0/1.1':<12} {'TLS 1.2':<44} TLS 1.3"]
    for name, scan in scans.items():
        legacy = ",".join(scan.legacy) or "refused"
        tls12 = [short(s) for s in scan.tls12] + [f"!{s}" for s in scan.tls12_forbidden]
        tls13 = ",".join(short(s) for s in scan.tls13) or "refused"
        port = f"{name}:{scan.port}"
        lines.append(f"{port:<28} {legacy:<12} {','.join(tls12) or 'refused':<44} {tls13}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def scans(
    stack: Settings, lake: Settings, running_endpoint: Settings, request: pytest.FixtureRequest
) -> dict[str, Scan]:
    """Every server running (earlier modules may have stopped some), a project's endpoint
    among them, each port scanned once."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command line tool is needed for the TLS 1.3 scan")
    Supervisor(stack).up("sandbox")
    Supervisor(lake).up("stack", timeout=180)
    slot = SERVING_PORTS + int(running_endpoint.serving_slot or 0)
    targets = [replace(t, offset=slot) if t.name == "serving" else t for t in TARGETS]
    result = {t.name: Scanner(lake, t).scan() for t in targets}
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + _table(result))
    return result


@pytest.mark.parametrize("name", NAMES)
def test_no_tls_below_1_2(scans: dict[str, Scan], name: str) -> None:
    assert scans[name].legacy == {}


@pytest.mark.parametrize("name", NAMES)
def test_tls_1_2_offers_only_forward_secret_aead_suites(scans: dict[str, Scan], name: str) -> None:
    scan = scans[name]
    assert scan.tls12_forbidden == []
    assert scan.tls12 or scan.tls13, "neither TLS 1.2 nor TLS 1.3 answers"


@pytest.mark.parametrize("name", NAMES)
def test_tls_1_3_has_no_ccm_8(scans: dict[str, Scan], name: str) -> None:
    assert "TLS_AES_128_CCM_8_SHA256" not in scans[name].tls13
    assert scans[name].tls13, "TLS 1.3 is not offered"


@pytest.mark.parametrize("name", NAMES)
def test_chain_passes_strict_validation_against_the_stack_ca(
    lake: Settings, scans: dict[str, Scan], name: str
) -> None:
    leaf, *intermediates = scans[name].chain
    roots = x509.load_pem_x509_certificates(lake.ca_bundle.read_bytes())
    verifier = (
        PolicyBuilder()
        .store(Store(roots))
        .time(dt.datetime.now(dt.UTC))
        .build_server_verifier(x509.IPAddress(ipaddress.ip_address(lake.host)))
    )
    chain = verifier.verify(leaf, intermediates)
    assert chain[-1] in roots
    target = next(t for t in TARGETS if t.name == name)
    target = replace(target, offset=scans[name].port - lake.port_base)
    # OpenSSL's own strict verification, hostname (the IP) included, in a real handshake.
    assert Scanner(lake, target).handshake(ssl.TLSVersion.TLSv1_2, "ECDHE", verify=True)


@pytest.mark.parametrize("name", NAMES)
def test_leaf_has_subject_and_authority_key_ids(
    lake: Settings, scans: dict[str, Scan], name: str
) -> None:
    leaf, *served = scans[name].chain
    # OpenBao's listener serves its leaf alone: its issuer is the root in ca.pem.
    candidates = served + x509.load_pem_x509_certificates(lake.ca_bundle.read_bytes())
    issuer = next(c for c in candidates if c.subject == leaf.issuer)
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert ski.digest
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest

"""Every socket a server of the stack listens on is verified TLS or a private Unix socket.

For each running server (its pid file), every process of its tree (descendants and its
session) is read from /proc: the listening TCP and UDP sockets in its network tables,
matched to the socket inodes among its file descriptors, and its listening (or bound
datagram) Unix sockets. Each TCP socket must complete a TLS handshake verified with the
stack's CA for the name in the certificates; PostgreSQL's only after its SSLRequest, as
its protocol has it. Where the stack holds a client certificate for a server (SeaweedFS's
internal listeners), the handshake is made with it, and the ports that demand one are
shown. A Unix socket and its directory must be the server's own user's alone. UDP fails
unless justified below. Documented exceptions, each with the property asserted instead:
OpenBao's raft cluster port, and the gRPC sockets SeaweedFS hard-codes under /tmp.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import ssl
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from safeguards import pki
from safeguards.settings import LAKE_PORTS, PORT_OFFSETS, Settings
from services.postgres import launcher as postgres
from services.supervisor import Supervisor
from services.topology import services_for

pytestmark = pytest.mark.integration

# Client certificates of the stack, by server, for listeners that ask for one.
CLIENT_CERTS = {"seaweedfs": "seaweedfs-internal"}
# SeaweedFS's master, volume and filer HTTPS and gRPC ports, and the S3 gateway's gRPC, in
# every region's lake: mutual TLS; the S3 port itself authenticates requests with S3
# signatures instead.
SEAWEEDFS_MTLS = [listener for listener in LAKE_PORTS if listener != "s3"]
# Documented exceptions, by (service, port offset): why they are not verified with the CA.
EXCEPTIONS = {
    ("openbao", PORT_OFFSETS["openbao"] + 1): (
        "raft cluster port: mutual TLS under a CA OpenBao generates internally, not the "
        "stack's; asserted instead that a client without a cluster certificate is refused "
        "and that plaintext gets no plaintext answer"
    ),
}
# OpenBao's cluster protocols (request forwarding, raft), and none at all.
CLUSTER_ALPN = (None, "req_fw_sb-act_v1", "raft_storage_v1")
# Unix sockets outside a private directory, by service, with the reason.
UNIX_EXCEPTIONS = {
    # `weed server` also serves each in-process gRPC server on a Unix socket at a path it
    # hard-codes (weed/command/server.go: /tmp/seaweedfs-<name>-grpc-<port>.sock); no
    # flag moves or disables it. Asserted instead: the socket file is private, /tmp is
    # sticky, and the socket demands the same mutual TLS as the gRPC port.
    "seaweedfs": re.compile(r"/tmp/seaweedfs-(master|volume|filer|s3)-grpc-\d+\.sock"),
}
# UDP sockets allowed, by service, with the reason: none.
UDP_JUSTIFIED: dict[str, str] = {}
# Abstract Unix sockets (no file, so no permission check) allowed, by service: none.
ABSTRACT_JUSTIFIED: dict[str, str] = {}

_TCP_LISTEN = "0A"
_UNIX_ACCEPTCON = 0x10000
_UNIX_DGRAM = 2
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_TLS_ALERT = b"\x15"


@dataclass
class Listener:
    service: str
    proto: str  # tcp, tcp6, udp, udp6, unix
    address: str  # host or path
    port: int = 0
    uid: int = 0
    pids: set[int] = field(default_factory=set)

    def where(self) -> str:
        return f"{self.address}:{self.port}" if self.proto != "unix" else self.address


# -- inventory from /proc ----------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, session) of `pid`, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[3])


def process_tree(root: int) -> set[int]:
    """`root`, its descendants, and every process of its session (the supervisor starts
    each server as a session of its own, so a daemonised child is still found)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = info
    tree = {root} | {pid for pid, (_, session) in table.items() if session == root}
    grown = True
    while grown:
        children = {pid for pid, (ppid, _) in table.items() if ppid in tree} - tree
        tree |= children
        grown = bool(children)
    return tree


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    # IPv6: four 32-bit words, each in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words), int(port, 16)


def _inet(pid: int, proto: str) -> Iterator[tuple[int, str, int]]:
    """(inode, host, port) of the listening sockets in `pid`'s network namespace: TCP in
    LISTEN, UDP unconnected (no remote address), that is receiving from anyone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            cols = line.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], int(cols[9])
            if proto.startswith("tcp") and state != _TCP_LISTEN:
                continue
            if proto.startswith("udp") and _address(remote)[1] != 0:
                continue
            yield inode, *_address(local)


def _unix(pid: int) -> Iterator[tuple[int, str]]:
    """(inode, path) of the listening stream and bound datagram Unix sockets; an abstract
    name is shown with a leading @."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]:
            cols = line.split()
            if len(cols) < 8:
                continue  # unbound
            flags, kind, inode = int(cols[3], 16), int(cols[4], 16), int(cols[6])
            if flags & _UNIX_ACCEPTCON or kind == _UNIX_DGRAM:
                yield inode, cols[7]


def inventory(settings: Settings) -> dict[str, list[Listener]]:
    """Every running server's listening sockets, by service."""
    supervisor = Supervisor(settings)
    found: dict[str, list[Listener]] = {}
    for service, name in ((s, n) for s in services_for("stack") for n in supervisor.names(s)):
        root = supervisor.pid(name)
        if root is None:
            continue
        by_inode: dict[int, Listener] = {}
        for pid in sorted(process_tree(root)):
            inodes = _socket_inodes(pid)
            if not inodes:
                continue
            try:
                uid = _uid(pid)
            except OSError:
                continue
            sockets = [
                (inode, proto, host, port)
                for proto in ("tcp", "tcp6", "udp", "udp6")
                for inode, host, port in _inet(pid, proto)
            ] + [(inode, "unix", path, 0) for inode, path in _unix(pid)]
            for inode, proto, host, port in sockets:
                if inode in inodes:
                    listener = by_inode.setdefault(
                        inode, Listener(service.name, proto, host, port, uid)
                    )
                    listener.pids.add(pid)
        found[name] = sorted(by_inode.values(), key=lambda s: (s.proto, s.port))
    return found


# -- verdicts ----------------------------------------------------------------------------


def _context(settings: Settings, client: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """Verification with the stack's CA; the client certificate, if given, for servers
    that ask for one."""
    context = ssl.create_default_context(cafile=str(settings.ca_bundle))
    # gRPC servers (SeaweedFS) refuse a handshake that does not offer HTTP/2.
    context.set_alpn_protocols(["h2", "http/1.1"])
    if client is not None:
        context.load_cert_chain(*client)
    return context


def _unverified(alpn: str | None) -> ssl.SSLContext:
    """No verification and no client certificate: what any local user can offer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn is not None:
        context.set_alpn_protocols([alpn])
    return context


def _client_cert(settings: Settings, service: str) -> tuple[Path, Path] | None:
    name = CLIENT_CERTS.get(service)
    if name is None:
        return None
    key, cert = pki.server_files(settings, service, name)
    return cert, key


def _connector(listener: Listener) -> Callable[[], socket.socket]:
    def unix() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(listener.address)
        return sock

    def tcp() -> socket.socket:
        address = ipaddress.ip_address(listener.address)
        if address.is_unspecified:  # a wildcard listener: reach it over loopback
            address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
        return socket.create_connection((str(address), listener.port), timeout=5)

    return unix if listener.proto == "unix" else tcp


@dataclass(frozen=True)
class Outcome:
    """One TLS attempt: what was agreed, and why the server refused ("" if it did not)."""

    agreed: str
    refusal: str


def _reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not verified ({exc.verify_message})"
    return str(exc.reason or exc)


def attempt(
    connect: Callable[[], socket.socket],
    context: ssl.SSLContext,
    hostname: str | None,
    sslrequest: bool = False,
) -> Outcome:
    """A TLS handshake, then one read. In TLS 1.3 a server checks the client's certificate
    after the client's side of the handshake is done, so a refusal comes as an alert on
    that read; a server that accepted the session waits for a request (or, speaking
    HTTP/2, sends its settings). A close or reset after the handshake is a refusal too."""
    try:
        with connect() as raw:
            if sslrequest:
                raw.sendall(_SSL_REQUEST)
                answer = raw.recv(1)
                if answer != b"S":
                    return Outcome("", f"SSLRequest answered {answer!r}")
            with context.wrap_socket(raw, server_hostname=hostname) as tls:
                cipher = tls.cipher()
                agreed = f"{tls.version()} {cipher[0] if cipher else '?'}"
                tls.settimeout(1)
                try:
                    if tls.recv(1) == b"":
                        return Outcome(agreed, "closed after the handshake")
                except TimeoutError:
                    pass
                except ssl.SSLError as exc:
                    return Outcome(agreed, _reason(exc))
                return Outcome(agreed, "")
    except ssl.SSLError as exc:
        return Outcome("", _reason(exc))
    except OSError as exc:
        return Outcome("", f"{type(exc).__name__}: {exc}")


def _plaintext_unanswered(connect: Callable[[], socket.socket]) -> bool:
    """Whether plaintext bytes get no plaintext back: nothing, a reset, or a TLS alert."""
    with connect() as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(3)
        try:
            answer = raw.recv(64)
        except (TimeoutError, ConnectionResetError):
            return True
    return answer == b"" or answer[:1] == _TLS_ALERT


def verdict_tcp(settings: Settings, listener: Listener) -> tuple[bool, str]:
    offset = listener.port - settings.port_base
    connect, client = _connector(listener), _client_cert(settings, listener.service)
    sslrequest = listener.service == "postgres" and listener.port == postgres.port(settings)
    verified = attempt(connect, _context(settings, client), settings.host, sslrequest)
    if verified.refusal:
        if (listener.service, offset) in EXCEPTIONS:
            return _openbao_cluster(listener, verified)
        return False, f"no verified TLS: {verified.refusal}"
    text = f"TLS verified ({verified.agreed})"
    if client is None:
        return True, text
    anonymous = attempt(connect, _context(settings), settings.host, sslrequest)
    if anonymous.refusal:
        return True, f"{text}, client cert required"
    mutual = {settings.lake_port(r, n) for r in settings.region_names for n in SEAWEEDFS_MTLS}
    if listener.service == "seaweedfs" and listener.port in mutual:
        return False, f"{text}, but no client certificate required"
    return True, text


def _openbao_cluster(listener: Listener, verified: Outcome) -> tuple[bool, str]:
    """OpenBao's cluster port: refused to anyone without a cluster client certificate,
    whichever cluster protocol is asked for, and silent to plaintext."""
    connect = _connector(listener)
    refusals = {alpn: attempt(connect, _unverified(alpn), None).refusal for alpn in CLUSTER_ALPN}
    forwarding = refusals["req_fw_sb-act_v1"]
    silent = _plaintext_unanswered(connect)
    ok = all(refusals.values()) and "CERTIFICATE_REQUIRED" in forwarding and silent
    summary = ", ".join(f"{alpn or 'no ALPN'}: {why}" for alpn, why in refusals.items())
    return ok, (
        f"EXCEPTION: not the stack CA ({verified.refusal}); without a cluster client cert "
        f"refused ({summary}); plaintext {'unanswered' if silent else 'ANSWERED'}"
    )


def _private(path: Path, uid: int) -> str | None:
    """None if `path` is `uid`'s with no group or other bits, else what is wrong."""
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != uid:
        return f"{path} owned by uid {info.st_uid}, not {uid}"
    if mode & 0o077:
        return f"{path} mode {mode:04o}"
    return None


def verdict_unix(settings: Settings, listener: Listener) -> tuple[bool, str]:
    if listener.address.startswith("@"):
        reason = ABSTRACT_JUSTIFIED.get(listener.service)
        return reason is not None, f"abstract socket: {reason or 'no file permissions'}"
    path = Path(listener.address)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        parent = path.parent.stat()
        problems = [
            p for p in (_private(path, listener.uid), _private(path.parent, listener.uid)) if p
        ]
    except FileNotFoundError:
        return True, "unlinked: no one can connect"
    pattern = UNIX_EXCEPTIONS.get(listener.service)
    if problems and pattern is not None and pattern.fullmatch(listener.address):
        return _seaweedfs_grpc_socket(settings, listener, parent)
    if problems:
        return False, "; ".join(problems)
    return True, f"private (socket {mode:04o}, directory {stat.S_IMODE(parent.st_mode):04o})"


def _seaweedfs_grpc_socket(
    settings: Settings, listener: Listener, parent: os.stat_result
) -> tuple[bool, str]:
    """A gRPC socket SeaweedFS puts in /tmp: the socket file is its user's alone, /tmp is
    sticky (no one else can remove or replace it), and the socket speaks the same mutual
    TLS as the gRPC port: verified with the stack's CA, refused without a client cert."""
    own = _private(Path(listener.address), listener.uid)
    sticky = bool(parent.st_mode & stat.S_ISVTX) and parent.st_uid == 0
    connect, client = _connector(listener), _client_cert(settings, listener.service)
    verified = attempt(connect, _context(settings, client), settings.host)
    anonymous = attempt(connect, _context(settings), settings.host)
    ok = own is None and sticky and not verified.refusal and bool(anonymous.refusal)
    return ok, (
        f"EXCEPTION: path hard-coded by weed server; socket {own or 'private'}, "
        f"directory {'sticky' if sticky else 'NOT sticky'}; mTLS "
        f"{verified.refusal or 'verified (' + verified.agreed + ')'}, without client cert "
        f"{anonymous.refusal or 'ACCEPTED'}"
    )


def verdict(settings: Settings, listener: Listener) -> tuple[bool, str]:
    if listener.proto.startswith("tcp"):
        return verdict_tcp(settings, listener)
    if listener.proto.startswith("udp"):
        reason = UDP_JUSTIFIED.get(listener.service)
        return reason is not None, f"UDP: {reason or 'not justified'}"
    return verdict_unix(settings, listener)


def check(settings: Settings, expected: dict[str, int]) -> None:
    """Every running server's sockets; `expected` servers (by name, with their port) must
    be among them."""
    found = inventory(settings)
    assert set(expected) <= set(found), f"not running: {set(expected) - set(found)}"
    rows = []
    for service in found:
        for listener in found[service]:
            ok, text = verdict(settings, listener)
            pids = ",".join(map(str, sorted(listener.pids)))
            rows.append((ok, service, pids, listener.proto, listener.where(), text))
    header = ("service", "pid", "proto", "address", "verdict")
    widths = [max(len(str(r[i + 1])) for r in [(True, *header), *rows]) for i in range(4)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row[1:5], widths, strict=True))
        + f"  {'' if row[0] else 'FAIL '}{row[5]}"
        for row in [(True, *header), *rows]
    ]
    table = "\n".join(lines)
    print("\n" + table)
    # Not vacuous: each server is seen listening on its own port.
    for name, port in expected.items():
        ports = {listener.port for listener in found[name] if listener.proto[:3] == "tcp"}
        assert port in ports, f"{name} not seen on its port\n{table}"
    failures = [row for row in rows if not row[0]]
    assert not failures, f"{len(failures)} socket(s) neither verified TLS nor private:\n{table}"


def _expected(settings: Settings, endpoint: Settings, profile: str) -> dict[str, int]:
    servers = [s for s in services_for(profile) if not s.per_project]
    name = f"serving-{endpoint.serving_project}"
    return {s.name: s.port(settings) for s in servers} | {name: endpoint.port("serving")}


def test_every_socket_of_the_sandbox_is_verified_tls_or_private(
    stack: Settings, running_endpoint: Settings
) -> None:
    check(stack, _expected(stack, running_endpoint, "sandbox"))


def test_every_socket_of_the_stack_is_verified_tls_or_private(
    tracking: Settings, running_endpoint: Settings
) -> None:
    check(tracking, _expected(tracking, running_endpoint, "stack"))

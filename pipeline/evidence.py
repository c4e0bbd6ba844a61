"""The evidence report: every control check, on the running stack and on terraform/, each
mapped to the paragraph of 45 CFR 164.312 (or the platform checkpoint) it serves.

`collect` runs the checks; each is pass, fail or not applicable, with its evidence as
counts and names of the platform's own things (servers, identities, projects, keys),
never a value of a credential or of data. `write` keeps the report as JSON for machines
and self-contained HTML for an auditor, 0600 in the data directory, on the stack also in
the platform's artifacts zone under SSE-KMS, and audits it with the JSON's SHA-256.

The live checks read the configuration as the operator (nothing is changed) and the audit
chain as the auditor. What each one asserts is in its docstring; the README's Evidence
section lists them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import hvac
import jinja2
import requests

import contract as contracts
from safeguards import credentials, envelope, keys, objectstore, phi, residency
from safeguards.audit import AuditLog
from safeguards.errors import NotFound, SafeguardError
from safeguards.files import write_private
from safeguards.openbao import SECRET_ID_TTL_HOURS
from safeguards.settings import PLACEHOLDERS, Settings
from services.mlflow import launcher as mlflow
from services.prometheus import launcher as prometheus
from services.seaweedfs import launcher as seaweedfs
from services.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[1]
CONTROLS = {
    "164.312(a)(1)": "Access control",
    "164.312(a)(2)(iv)": "Encryption and decryption",
    "164.312(b)": "Audit controls",
    "164.312(c)(1)": "Integrity",
    "164.312(d)": "Person or entity authentication",
    "164.312(e)(1)": "Transmission security",
    "customer-managed keys": "Every key is the platform's own, per project and region",
    "BAA-eligible services": "The cloud uses HIPAA-eligible services only",
    "private endpoints": "Nothing listens in plaintext or beyond its clients",
    "log retention": "Logs kept six years",
    "no PHI in metrics": "No identifier in any metric name, label or value",
}
PASS, FAIL, NA = "pass", "fail", "not applicable"
KEY_MAX_AGE_DAYS = 365
# A generated credential: at least this long, and this many distinct characters.
MIN_CREDENTIAL_LENGTH, MIN_DISTINCT = 20, 8
# MLflow's own default administrator, from its basic-auth configuration.
MLFLOW_DEFAULT_ADMIN = ("admin", "password1234")
# Test modules whose results the report names as security tests.
SECURITY_TESTS = (
    "test_access_control", "test_audit_chain", "test_audit_insider", "test_envelope",
    "test_insiders", "test_listening_sockets", "test_phi_never_logged",
    "test_project_lifecycle", "test_residency", "test_s3_matrix", "test_secret_ids",
    "test_sse_binding", "test_terraform", "test_tls_quality", "test_transport",
)  # fmt: skip


@dataclass(frozen=True)
class Check:
    name: str
    controls: tuple[str, ...]
    status: str
    summary: str
    evidence: dict[str, int | str] = field(default_factory=dict)
    # Rows for the HTML report (e.g. an identity and its capabilities).
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Report:
    created: str
    commit: str
    profile: str
    checks: tuple[Check, ...]

    @property
    def red(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "controls": CONTROLS}, indent=1, sort_keys=True).encode()


def _check(
    name: str, controls: tuple[str, ...], failures: int, summary: str, **evidence: int | str
) -> Check:
    return Check(name, controls, PASS if failures == 0 else FAIL, summary, evidence)


# -- transmission ------------------------------------------------------------------------


def _endpoints(settings: Settings) -> list[tuple[str, str, int, str]]:
    """(server, host, port, scheme) of every running server of the stack."""
    found = []
    for state in Supervisor(settings).status(settings.profile):
        if state.state == "stopped" or not state.url:
            continue
        url = urlsplit(state.url)
        found.append((state.name, url.hostname or settings.host, url.port or 443, url.scheme))
    return found


def _connect(host: str, port: int, scheme: str) -> socket.socket:
    raw = socket.create_connection((host, port), timeout=5)
    if scheme == "postgresql":
        # PostgreSQL's SSLRequest; it answers S and then speaks TLS.
        raw.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
        if raw.recv(1) != b"S":
            raw.close()
            raise ssl.SSLError("no TLS after the SSLRequest")
    return raw


def _handshake(context: ssl.SSLContext, host: str, port: int, scheme: str) -> str | None:
    """The TLS version agreed, or None when the handshake fails."""
    try:
        with (
            _connect(host, port, scheme) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return tls.version()
    except (OSError, ssl.SSLError):
        return None


def _serves_plaintext(host: str, port: int) -> bool:
    """Whether a plaintext HTTP request gets anything but an error: a TLS server may say
    in plaintext that it speaks TLS (Go answers 400), never serve."""
    try:
        with socket.create_connection((host, port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            raw.settimeout(5)
            status = raw.recv(12)
    except OSError:
        return False
    return status.startswith(b"HTTP/") and status[9:10] not in (b"4", b"5")


def check_transport(settings: Settings) -> Check:
    """Every running server's port completes a TLS handshake verified with the stack's CA
    for its address, agrees TLS 1.2 or later, refuses a client that offers only TLS 1.0
    or 1.1, and serves nothing to a plaintext request (an error status at most)."""
    verified = ssl.create_default_context(cafile=str(settings.ca_bundle))
    verified.minimum_version = ssl.TLSVersion.TLSv1_2
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version, old.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    endpoints = _endpoints(settings)
    if not endpoints:
        return Check("transport", ("164.312(e)(1)",), NA, "no server of the stack is running")
    failed: list[tuple[str, str]] = []
    details = []
    for name, host, port, scheme in endpoints:
        version = _handshake(verified, host, port, scheme)
        problems = [
            what
            for what, bad in (
                ("no verified TLS 1.2+ handshake", version is None),
                ("accepts TLS 1.0/1.1", _handshake(old, host, port, scheme) is not None),
                ("serves plaintext HTTP", scheme == "https" and _serves_plaintext(host, port)),
            )
            if bad
        ]
        failed += [(f"{name}:{port}", p) for p in problems]
        details.append((f"{name} (port {port})", "; ".join(problems) or f"{version}, verified"))
    check = _check(
        "transport",
        ("164.312(e)(1)", "164.312(d)", "private endpoints"),
        len(failed),
        f"{len(endpoints)} listening servers: verified TLS 1.2+ only, no plaintext"
        if not failed
        else f"{len(failed)} problems on {len({f[0] for f in failed})} ports",
        ports=len(endpoints),
        problems=len(failed),
    )
    return replace(check, details=tuple(details))


# -- authentication ----------------------------------------------------------------------


def _kv_paths(operator: hvac.Client, prefix: str, unlisted: list[str]) -> Iterator[str]:
    """Every secret under `prefix`; folders the operator may not list go to `unlisted`
    (the endpoint slots' records: deleted, never read, by the operator)."""
    try:
        listed = operator.secrets.kv.v2.list_secrets(path=prefix, mount_point="secret")
    except hvac.exceptions.InvalidPath:
        return
    except hvac.exceptions.Forbidden:
        unlisted.append(prefix)
        return
    for key in listed["data"]["keys"]:
        if key.endswith("/"):
            yield from _kv_paths(operator, prefix + key, unlisted)
        else:
            yield prefix + key


def _weak(value: str) -> bool:
    return (
        len(value) < MIN_CREDENTIAL_LENGTH
        or len(set(value)) < MIN_DISTINCT
        or bool(PLACEHOLDERS.match(value))
    )


def check_credentials(settings: Settings, operator: hvac.Client) -> Check:
    """Every credential the stack generated into OpenBao (its servers' passwords, keys and
    S3 identities) is long and random, none a placeholder; MLflow refuses its own default
    administrator password."""
    checked = weak = 0
    unlisted: list[str] = []
    for path in _kv_paths(operator, "services/", unlisted):
        for name, value in credentials.read(operator, path).items():
            if name in ("password", "key", "secret_key"):
                checked += 1
                weak += _weak(str(value))
    default = requests.get(
        f"{mlflow.url(settings)}/api/2.0/mlflow/experiments/search",
        params={"max_results": 1},
        auth=MLFLOW_DEFAULT_ADMIN,
        verify=str(settings.ca_bundle),
        timeout=10,
    )
    refused = default.status_code == 401
    return _check(
        "credentials",
        ("164.312(d)",),
        weak + (not refused),
        f"{checked} generated credentials, {weak} weak; MLflow's default admin password "
        + ("refused" if refused else "ACCEPTED")
        + (f"; not listable by the operator: {', '.join(unlisted)}" if unlisted else ""),
        credentials=checked,
        weak=weak,
        mlflow_default_admin_status=default.status_code,
    )


def check_identities(settings: Settings, operator: hvac.Client) -> Check:
    """Every AppRole's secret ids expire within the stack's lifetime, its tokens within an
    hour (a day at most), and both work only from the stack's own addresses. The lakes'
    KMS identities' tokens last longer, as long as `seaweedfs.KMS_TOKEN_HOURS` at most:
    SeaweedFS logs in once and never renews."""
    kms = {settings.lake_name(r) for r in settings.region_names}
    roles = operator.auth.approle.list_roles()["data"]["keys"]
    loose: list[str] = []
    for role in roles:
        data = operator.auth.approle.read_role(role)["data"]
        ttl, max_ttl = (3600, 86400) if role not in kms else (seaweedfs.KMS_TOKEN_HOURS * 3600,) * 2
        if not (
            0 < data["secret_id_ttl"] <= SECRET_ID_TTL_HOURS * 3600
            and 0 < data["token_ttl"] <= ttl
            and 0 < data["token_max_ttl"] <= max_ttl
            and data["secret_id_bound_cidrs"]
            and data["token_bound_cidrs"]
        ):
            loose.append(role)
    return _check(
        "identities",
        ("164.312(d)", "164.312(a)(1)"),
        len(loose),
        f"{len(roles)} AppRoles: secret ids at most {SECRET_ID_TTL_HOURS} h, tokens at most "
        f"1 h ({seaweedfs.KMS_TOKEN_HOURS} h for the {len(kms & set(roles))} lakes' KMS, "
        "which never renews), all bound to the stack's addresses"
        + (f"; not so: {', '.join(loose)}" if loose else ""),
        approles=len(roles),
        loose=len(loose),
    )


# -- access control ----------------------------------------------------------------------

_PATH = re.compile(r'path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]')


def capabilities(operator: hvac.Client, policy: str) -> list[tuple[str, list[str]]]:
    """(path, capabilities) of each rule of an OpenBao policy."""
    rules = operator.sys.read_policy(policy)["data"]["rules"]
    return [(p, re.findall(r'"([a-z]+)"', caps)) for p, caps in _PATH.findall(rules)]


def check_policies(operator: hvac.Client) -> Check:
    """Each identity's effective capabilities, listed: no identity holds `sudo` or the
    root policy, and no identity of a project names another project in any path."""
    roles = operator.auth.approle.list_roles()["data"]["keys"]
    projects = set(keys.projects(operator))
    details, violations = [], 0
    for role in roles:
        data = operator.auth.approle.read_role(role)["data"]
        owner = role.partition("-")[2] if role.partition("-")[2] in projects else None
        rules = [rule for p in data["token_policies"] for rule in capabilities(operator, p)]
        bad = "root" in data["token_policies"] or any("sudo" in caps for _, caps in rules)
        if owner is not None:
            # Its own name taken out first, so that a name containing another is no match.
            bad = bad or any(
                re.search(rf"(^|[/.+-]){re.escape(other)}($|[/.*-])", path.replace(owner, ""))
                for path, _ in rules
                for other in projects - {owner}
            )
        violations += bad
        listing = "; ".join(f"{path}: {','.join(caps)}" for path, caps in rules)
        details.append((role + (" (VIOLATION)" if bad else ""), listing))
    check = _check(
        "least privilege",
        ("164.312(a)(1)",),
        violations,
        f"{len(roles)} identities, each one's capabilities listed; {violations} violations",
        identities=len(roles),
        violations=violations,
    )
    return replace(check, details=tuple(details))


# -- encryption and residency --------------------------------------------------------------


def _sandbox_misencrypted(settings: Settings, project: str, region: str) -> int:
    """Files of the project's zones and dataset remote in `region`'s sandbox lake that are
    not sealed under the key they belong under."""
    lake = settings.data_dir / "lake" / region
    places = [
        (lake / objectstore.bucket_name(project, z), objectstore.zone_key(project, z, region))
        for z in objectstore.ZONES
    ]
    # Dataset versions' DVC remote: files sealed under the project key before DVC saw them.
    places.append((lake / f"{project}-dvc-remote", keys.key_name(project, region)))
    wrong = 0
    for root, expected in places:
        for path in (p for p in root.rglob("*") if p.is_file()):
            with path.open("rb") as f:
                head = f.read(64 * 1024)
            try:
                wrong += envelope.key_of(head) != expected
            except SafeguardError:
                wrong += 1
    return wrong


def check_encryption(settings: Settings, operator: hvac.Client) -> Check:
    """Every object of every project, in every region it may keep data in, is encrypted
    under its zone's key there: on the stack, SSE-KMS read back object by object; in the
    sandbox, the envelope's key in each sealed file."""
    projects = keys.projects(operator)
    wrong = objects_regions = 0
    for project in projects:
        for region in residency.allowed(operator, project):
            objects_regions += 1
            if settings.profile == "stack":
                lake = seaweedfs.in_region(settings, region)
                client = seaweedfs.admin_client(lake, operator)
                wrong += sum(objectstore.misencrypted(client, project, region).values())
            else:
                wrong += _sandbox_misencrypted(settings, project, region)
    return _check(
        "encryption at rest",
        ("164.312(a)(2)(iv)", "customer-managed keys"),
        wrong,
        f"{len(projects)} projects in {objects_regions} project-regions: {wrong} objects "
        "not under their zone's key",
        projects=len(projects),
        misencrypted=wrong,
    )


def check_key_rotation(operator: hvac.Client, now: dt.datetime) -> Check:
    """Every transit key's newest version is younger than a year (`keys rotate`)."""
    names = operator.secrets.transit.list_keys()["data"]["keys"]
    overdue, oldest = [], 0
    for name in names:
        data = operator.secrets.transit.read_key(name)["data"]
        created = data["keys"][str(data["latest_version"])]
        created = created["creation_time"] if isinstance(created, dict) else created
        when = (
            dt.datetime.fromisoformat(created)
            if isinstance(created, str)
            else dt.datetime.fromtimestamp(created, dt.UTC)
        )
        age = (now - when).days
        oldest = max(oldest, age)
        if age > KEY_MAX_AGE_DAYS:
            overdue.append(name)
    return _check(
        "key rotation",
        ("164.312(a)(2)(iv)", "customer-managed keys"),
        len(overdue),
        f"{len(names)} keys; the oldest newest version is {oldest} days old (at most "
        f"{KEY_MAX_AGE_DAYS})" + (f"; overdue: {', '.join(overdue)}" if overdue else ""),
        keys=len(names),
        oldest_days=oldest,
        overdue=len(overdue),
    )


def check_residency(settings: Settings, operator: hvac.Client) -> Check:
    """No project has a key, or (on the stack) a bucket, in a region outside its own."""
    names = operator.secrets.transit.list_keys()["data"]["keys"]
    outside = 0
    projects = keys.projects(operator)
    for project in projects:
        allowed = set(residency.allowed(operator, project))
        for name in names:
            region, _, rest = name.partition(".")
            kind, _, owner = rest.partition("-")
            outside += owner == project and kind in keys.KINDS and region not in allowed
        if settings.profile == "stack":
            for region in set(settings.region_names) - allowed:
                client = seaweedfs.admin_client(seaweedfs.in_region(settings, region), operator)
                buckets = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
                zones = {objectstore.bucket_name(project, z) for z in objectstore.ZONES}
                outside += len(buckets & zones)
    return _check(
        "residency",
        ("164.312(a)(1)",),
        outside,
        f"{len(projects)} projects: {outside} keys or buckets outside their regions",
        projects=len(projects),
        outside=outside,
    )


# -- metrics ---------------------------------------------------------------------------


def metrics_findings(series: list[dict[str, str]], identifier_columns: set[str]) -> int:
    """Series whose name, label names or label values hold an identifier pattern or name
    a column the contracts mark as identifying."""
    found = 0
    for labels in series:
        text = " ".join(f"{k}={v}" for k, v in labels.items())
        names = {labels.get("__name__", ""), *labels, *labels.values()}
        found += bool(phi.find_identifiers(text) or names & identifier_columns)
    return found


def check_metrics(settings: Settings, operator: hvac.Client) -> Check:
    """Every series Prometheus holds (every endpoint's and the worker's, the last hour):
    no identifier pattern in a name, label or value, and no label or metric named after a
    column any project's contract marks as an identifier or quasi-identifier."""
    controls = ("no PHI in metrics", "164.312(a)(1)")
    if settings.profile != "stack":
        return Check("metrics", controls, NA, "no Prometheus on the sandbox profile")
    now = dt.datetime.now(dt.UTC).timestamp()
    password = credentials.read(operator, prometheus.ADMIN_CREDENTIAL)["password"]
    answer = requests.get(
        f"{prometheus.url(settings)}/api/v1/series",
        params={"match[]": '{__name__=~".+"}', "start": str(now - 3600), "end": str(now)},
        auth=(prometheus.ADMIN, password),
        verify=str(settings.ca_bundle),
        timeout=30,
    )
    answer.raise_for_status()
    series = answer.json()["data"]
    if not series:
        return Check("metrics", controls, NA, "Prometheus holds no series of the last hour yet")
    identifying: set[str] = set()
    for project in keys.projects(operator):
        try:
            contract = contracts.load(operator, project)
        except NotFound:
            continue  # the platform's own project, or one made without a contract
        roles = contracts.Role.IDENTIFIER, contracts.Role.QUASI_IDENTIFIER
        identifying |= {c.name for c in contract.with_role(*roles)}
    found = metrics_findings(series, identifying)
    return _check(
        "metrics",
        controls,
        found,
        f"{len(series)} series in Prometheus: {found} with an identifier or an identifying "
        f"column's name ({len(identifying)} such names across the contracts)",
        series=len(series),
        findings=found,
    )


# -- audit and files -------------------------------------------------------------------


def check_audit(settings: Settings, auditor: hvac.Client) -> Check:
    """The audit log verifies as the auditor: every entry's signature, the hash chain from
    its first entry (nothing dropped) and every anchor."""
    try:
        verified = AuditLog.of(settings, auditor).verify()
    except SafeguardError as exc:
        return Check(
            "audit chain", ("164.312(b)", "164.312(c)(1)", "log retention"), FAIL, str(exc)
        )
    return _check(
        "audit chain",
        ("164.312(b)", "164.312(c)(1)", "log retention"),
        0,
        f"{verified.entries} entries by {len(verified.signers)} signers, "
        f"{verified.anchors} anchors: verified",
        entries=verified.entries,
        signers=len(verified.signers),
        anchors=verified.anchors,
    )


# Files a server makes open to others itself, with why that exposes nothing; each must
# sit in a directory of its owner's alone.
MODE_EXCEPTIONS = {
    "*.vif": "SeaweedFS writes each volume's info file 0644 itself: the volume's version "
    "and replication, no data",
}


def check_file_modes(settings: Settings) -> Check:
    """Nothing in the data directory (keys, certificates, credentials, server data, logs)
    is open to any user but its owner, but for `MODE_EXCEPTIONS`, each in a private
    directory."""
    files = exposed = excepted = 0
    for directory, dirnames, filenames in os.walk(settings.data_dir):
        private = not os.stat(directory).st_mode & 0o077
        for name in [*dirnames, *filenames]:
            mode = os.lstat(os.path.join(directory, name)).st_mode
            if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode):
                continue
            files += 1
            if mode & 0o077 and private and any(Path(name).match(p) for p in MODE_EXCEPTIONS):
                excepted += 1
            elif mode & 0o077:
                exposed += 1
    return _check(
        "file modes",
        ("164.312(a)(1)",),
        exposed,
        f"{files} files and directories: {exposed} open to group or others"
        + (f" ({excepted} SeaweedFS volume info files excepted)" if excepted else ""),
        files=files,
        exposed=exposed,
        excepted=excepted,
    )


# -- static: terraform/ and the test suite ---------------------------------------------------


def check_terraform(root: Path = ROOT) -> Check:
    """checkov over terraform/, offline: no failed check."""
    checkov = root / ".venv-checkov" / "bin" / "checkov"
    controls = ("BAA-eligible services", "customer-managed keys", "log retention")
    if not (root / "terraform").is_dir() or not checkov.is_file():
        return Check("terraform (checkov)", controls, NA, "no checkout with make checkov here")
    done = subprocess.run(
        [checkov, "-d", root / "terraform", "--framework", "terraform", "--skip-download",
         "--quiet", "-o", "json"],
        capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )  # fmt: skip
    summary = json.loads(done.stdout)["summary"]
    return _check(
        "terraform (checkov)",
        controls,
        summary["failed"] + summary["parsing_errors"],
        f"checkov {summary['checkov_version']}: {summary['passed']} passed, "
        f"{summary['failed']} failed, {summary['skipped']} skipped with reasons",
        passed=summary["passed"],
        failed=summary["failed"],
        skipped=summary["skipped"],
    )


def check_tests(results: Path) -> Check:
    """The security tests of the last `make test` (its JUnit file): which ran and passed,
    and at which commit."""
    controls = tuple(c for c in CONTROLS if c.startswith("164"))
    if not results.is_file():
        return Check("security tests", controls, NA, f"no test results at {results.name}")
    # The file `make test` wrote in the data directory, not input from outside.
    suite = ET.parse(results).getroot()  # noqa: S314
    commit = next(
        (p.get("value", "") for p in suite.iter("property") if p.get("name") == "commit"), ""
    )
    counts: dict[str, list[int]] = {}
    for case in suite.iter("testcase"):
        module = case.get("classname", "").split(".")[-1]
        if module in SECURITY_TESTS:
            outcome = counts.setdefault(module, [0, 0, 0])
            bad = case.find("failure") is not None or case.find("error") is not None
            outcome[1 if bad else 2 if case.find("skipped") is not None else 0] += 1
    failed = sum(c[1] for c in counts.values())
    check = _check(
        "security tests",
        controls,
        failed + (not counts),
        f"{sum(c[0] for c in counts.values())} passed, {failed} failed in {len(counts)} "
        f"security test modules at commit {commit[:12] or 'unknown'}",
        modules=len(counts),
        failed=failed,
        commit=commit,
    )
    return replace(
        check,
        details=tuple(
            (m, f"{c[0]} passed, {c[1]} failed, {c[2]} skipped") for m, c in sorted(counts.items())
        ),
    )


# -- the report ----------------------------------------------------------------------------


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def collect(
    settings: Settings,
    operator: hvac.Client,
    auditor: hvac.Client,
    results: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> Report:
    now = dt.datetime.now(dt.UTC)
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("transport", lambda: check_transport(settings)),
        ("credentials", lambda: check_credentials(settings, operator)),
        ("identities", lambda: check_identities(settings, operator)),
        ("least privilege", lambda: check_policies(operator)),
        ("encryption at rest", lambda: check_encryption(settings, operator)),
        ("key rotation", lambda: check_key_rotation(operator, now)),
        ("residency", lambda: check_residency(settings, operator)),
        ("metrics", lambda: check_metrics(settings, operator)),
        ("audit chain", lambda: check_audit(settings, auditor)),
        ("file modes", lambda: check_file_modes(settings)),
        ("terraform", check_terraform),
        ("security tests", lambda: check_tests(results)),
    ]
    checks = []
    for title, run in steps:
        progress(title)
        try:
            checks.append(run())
        except (SafeguardError, requests.RequestException) as exc:
            # A server that does not answer is a control that could not be shown: red.
            reason = str(exc) if isinstance(exc, SafeguardError) else type(exc).__name__
            checks.append(Check(title, (), FAIL, f"could not be checked: {reason}"))
    return Report(now.isoformat(timespec="seconds"), _commit(), settings.profile, tuple(checks))


_HTML = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>hipaa-mlops evidence {{ r.created }}</title><style>
body{font-family:sans-serif;margin:2em;max-width:80em} td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:left;vertical-align:top} table{border-collapse:collapse;
margin-bottom:1.5em} .pass{background:#e6f4ea} .fail{background:#fce8e6}
.na{background:#f1f3f4} small{color:#555}</style></head><body>
<h1>Evidence of the technical safeguards</h1>
<p>Created {{ r.created }} on the {{ r.profile }} profile, code at commit {{ r.commit }}.
{{ r.checks|length }} checks: {{ passed }} pass, {{ r.red|length }} fail,
{{ na }} not applicable. Evidence is counts and the platform's own names, never values.</p>
<h2>By control</h2><table><tr><th>control</th><th>checks</th></tr>
{% for control, title in controls.items() %}<tr><td>{{ control }}<br><small>{{ title }}
</small></td><td>{% for c in r.checks if control in c.controls %}<span class="{{ css[c.status] }}">
{{ c.name }}: {{ c.status }}</span>{% if not loop.last %}, {% endif %}{% else %}none
{% endfor %}</td></tr>{% endfor %}</table>
<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>what was found</th>
<th>controls</th></tr>{% for c in r.checks %}<tr class="{{ css[c.status] }}">
<td>{{ c.name }}</td><td>{{ c.status }}</td><td>{{ c.summary }}</td>
<td>{{ c.controls|join(", ") }}</td></tr>{% endfor %}</table>
{% for c in r.checks if c.details %}<h3>{{ c.name }}</h3><table>
{% for what, found in c.details %}<tr><td>{{ what }}</td><td><small>{{ found }}</small>
</td></tr>{% endfor %}</table>{% endfor %}</body></html>
""")


def html(report: Report) -> str:
    return _HTML.render(
        r=report,
        controls=CONTROLS,
        css={PASS: "pass", FAIL: "fail", NA: "na"},
        passed=sum(c.status == PASS for c in report.checks),
        na=sum(c.status == NA for c in report.checks),
    )


def write(
    settings: Settings, operator: hvac.Client, report: Report, actor: str
) -> tuple[Path, Path]:
    """The report as JSON and HTML, 0600 under the data directory (on the stack also in the
    platform's artifacts zone); audited with the JSON's SHA-256."""
    stamp = report.created.replace(":", "").replace("+0000", "Z")
    directory = settings.data_dir / "evidence"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    data, page = report.to_json(), html(report).encode()
    paths = directory / f"evidence-{stamp}.json", directory / f"evidence-{stamp}.html"
    for path, content in zip(paths, (data, page), strict=True):
        write_private(path, content)
        if settings.profile == "stack":
            store = seaweedfs.platform_store(settings, operator)
            store.put("artifacts", f"evidence/{path.name}", content)
    AuditLog.of(settings, operator).append(
        actor,
        "evidence.report",
        f"evidence/{paths[0].name}",
        sha256=hashlib.sha256(data).hexdigest(),
        red=str(len(report.red)),
    )
    return paths

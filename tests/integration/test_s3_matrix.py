"""The lake's isolation matrix: each S3 identity of project alpha (workload, data steward,
endpoint), with plain boto3, tries to list, read, write and delete in every zone of its
own project and of project beta, against the real SeaweedFS. What is allowed must be
exactly what `safeguards.objectstore.ROLES` and `PREFIX_ROLES` grant (the zone table in
the README), and nothing of beta's. Printed as a matrix. Then alpha is suspended: every
cell is denied, its own zones included; resumed, the matrix is as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import hvac
import pytest

import contract as contracts
from pipeline import projects
from safeguards import credentials, objectstore
from safeguards.settings import Settings
from services.seaweedfs import launcher as seaweedfs
from tests.conftest import LakeStack

pytestmark = pytest.mark.integration

ROLES = ("workload", "ingest", "serving")
OPERATIONS = ("list", "get", "put", "delete")
DENIED, ALLOWED = "denied", "ALLOWED"


def _operation(client: Any, op: str, bucket: str, key: str) -> Callable[[], object]:
    return {
        "list": lambda: client.list_objects_v2(Bucket=bucket, Prefix=key.rpartition("/")[0]),
        "get": lambda: client.get_object(Bucket=bucket, Key=key),
        "put": lambda: client.put_object(Bucket=bucket, Key=key, Body=b"matrix"),
        "delete": lambda: client.delete_object(Bucket=bucket, Key=key),
    }[op]


def _verdict(run: Callable[[], object]) -> str:
    try:
        run()
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("AccessDenied", "InvalidAccessKeyId", "403"):
            return DENIED
        raise
    return ALLOWED


def _expected(role: str, owner: str, zone: str, op: str, key: str) -> str:
    """What the zone table grants `role` of alpha."""
    if owner != "alpha":
        return DENIED
    mode = objectstore.ROLES.get(role, {}).get(zone, "")
    needed = "r" if op in ("list", "get") else "w"
    if needed in mode:
        return ALLOWED
    prefix_zone, prefix = objectstore.PREFIX_ROLES.get(role, ("", ""))
    if zone == prefix_zone and key.startswith(prefix) and op != "list":
        return ALLOWED
    return DENIED


def _cells(names: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(owner, zone, operation, key) for every cell."""
    cells = []
    for owner in ("alpha", "beta"):
        for zone in objectstore.ZONES:
            keys = ["matrix/object", "capture/object"] if zone == "artifacts" else ["matrix/object"]
            cells += [(owner, zone, op, key) for key in keys for op in OPERATIONS]
    return cells


def _run(
    lake: Settings,
    clients: dict[str, Any],
    names: dict[str, str],
    admin: Any,
    title: str,
    capsys: pytest.CaptureFixture[str],
) -> dict[tuple[str, str, str, str], dict[str, str]]:
    matrix = {}
    for owner, zone, op, key in _cells(names):
        bucket = objectstore.bucket_name(names[owner], zone)
        row = {}
        for role, client in clients.items():
            # Every attempt finds the object in place, whatever the attempt before did.
            admin.put_object(Bucket=bucket, Key=key, Body=b"seed")
            row[role] = _verdict(_operation(client, op, bucket, key))
        matrix[(owner, zone, op, key)] = row
    labels = {cell: f"{cell[0]} {cell[1]} {cell[3]}: {cell[2]}" for cell in matrix}
    width = max(len(label) for label in labels.values())
    lines = [f"{title:<{width}}  " + "  ".join(f"{r:>9}" for r in ROLES)]
    lines += [
        f"{labels[cell]:<{width}}  " + "  ".join(f"{row[r]:>9}" for r in ROLES)
        for cell, row in matrix.items()
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    return matrix


def test_each_s3_identity_reaches_exactly_its_zones_and_nothing_once_suspended(
    lake: Settings, operator: hvac.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = uuid.uuid4().hex[:6]
    names = {"alpha": f"alpha{tag}", "beta": f"beta{tag}"}
    stack = LakeStack(lake)
    for name in names.values():
        projects.create_project(
            operator, lake, name, contracts.example("diabetes"), lambda: stack.reload("seaweedfs")
        )
    clients = {}
    for role in ROLES:
        path = objectstore.s3_credentials_path(names["alpha"], role)
        creds = credentials.read(operator, path)
        clients[role] = objectstore.s3_client(
            lake.s3_url, creds["access_key"], creds["secret_key"], lake.ca_bundle
        )
    admin = seaweedfs.admin_client(lake, operator)

    matrix = _run(lake, clients, names, admin, "alpha's S3 identity", capsys)
    wrong = [
        f"{cell} by {role}: {verdict}"
        for cell, row in matrix.items()
        for role, verdict in row.items()
        if verdict != _expected(role, *cell)
    ]
    assert not wrong, wrong

    projects.suspend(operator, lake, names["alpha"], stack)
    suspended = _run(lake, clients, names, admin, "alpha suspended", capsys)
    assert {v for row in suspended.values() for v in row.values()} == {DENIED}

    projects.resume(operator, lake, names["alpha"], stack)
    assert _run(lake, clients, names, admin, "alpha resumed", capsys) == matrix

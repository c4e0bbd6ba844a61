"""The lake's isolation matrix, over three projects in two regions: alpha keeps data in
both (us-east primary), beta in us-east only, gamma in eu-central only. Each S3 identity of
alpha (workload, data steward, endpoint), with plain boto3, tries to list, read, write and
delete in every zone of every project, in each region's lake (a zone exists in a region
only if its project may keep data there), against the real SeaweedFS servers. What is
allowed must be exactly what `safeguards.objectstore.ROLES` and `PREFIX_ROLES` grant (the
zone table in the README) in alpha's own zones, and nothing of beta's or gamma's. Printed as
a matrix. Then alpha is suspended: every cell is denied, its own zones included; resumed,
the matrix is as before; deleted, every cell is denied again. And gamma's identities reach
nothing in the region it may not keep data in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import hvac
import pytest

from pipeline import projects
from safeguards import credentials, objectstore
from safeguards.settings import Settings
from services.seaweedfs import launcher as seaweedfs
from tests.conftest import HOME, REGIONS, LakeStack

pytestmark = pytest.mark.integration

ROLES = ("workload", "ingest", "serving")
OPERATIONS = ("list", "get", "put", "delete")
DENIED, ALLOWED = "denied", "ALLOWED"
REGIONS_OF = {"alpha": REGIONS, "beta": (HOME,), "gamma": (REGIONS[1],)}


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


def _expected(role: str, owner: str, region: str, zone: str, op: str, key: str) -> str:
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


def _cells() -> list[tuple[str, str, str, str, str]]:
    """(owner, region, zone, operation, key) for every cell: every zone of every project in
    every region it may keep data in."""
    cells = []
    for owner, regions in REGIONS_OF.items():
        for region in regions:
            for zone in objectstore.ZONES:
                keys = (
                    ["matrix/object", "capture/object"]
                    if zone == "artifacts"
                    else ["matrix/object"]
                )
                cells += [(owner, region, zone, op, key) for key in keys for op in OPERATIONS]
    return cells


def _run(
    clients: dict[str, dict[str, Any]],
    names: dict[str, str],
    admins: dict[str, Any],
    title: str,
    capsys: pytest.CaptureFixture[str],
    gone: str = "",
) -> dict[tuple[str, str, str, str, str], dict[str, str]]:
    """Every cell tried by each role; `gone`: a deleted owner, whose buckets are no more."""
    matrix = {}
    for owner, region, zone, op, key in _cells():
        bucket = objectstore.bucket_name(names[owner], zone)
        row = {}
        for role, client in clients[region].items():
            # Every attempt finds the object in place, whatever the attempt before did.
            if owner != gone:
                admins[region].put_object(Bucket=bucket, Key=key, Body=b"seed")
            row[role] = _verdict(_operation(client, op, bucket, key))
        matrix[(owner, region, zone, op, key)] = row
    labels = {cell: f"{cell[0]} {cell[1]} {cell[2]} {cell[4]}: {cell[3]}" for cell in matrix}
    width = max(len(label) for label in labels.values())
    lines = [f"{title:<{width}}  " + "  ".join(f"{r:>9}" for r in ROLES)]
    lines += [
        f"{labels[cell]:<{width}}  " + "  ".join(f"{row[r]:>9}" for r in ROLES)
        for cell, row in matrix.items()
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    return matrix


def _clients(lake: Settings, operator: hvac.Client, project: str) -> dict[str, dict[str, Any]]:
    """Each role of `project`, as a plain boto3 client of each region's lake."""
    clients: dict[str, dict[str, Any]] = {region: {} for region in REGIONS}
    for role in ROLES:
        path = objectstore.s3_credentials_path(project, role)
        creds = credentials.read(operator, path)
        for region in REGIONS:
            clients[region][role] = objectstore.s3_client(
                lake.lake_url(region), creds["access_key"], creds["secret_key"], lake.ca_bundle
            )
    return clients


def test_each_s3_identity_reaches_exactly_its_zones_in_its_regions_and_nothing_once_revoked(
    lake: Settings, operator: hvac.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = uuid.uuid4().hex[:6]
    names = {owner: f"{owner}{tag}" for owner in REGIONS_OF}
    stack = LakeStack(lake)
    for owner, name in names.items():
        stack.create(operator, name, REGIONS_OF[owner])
    clients = _clients(lake, operator, names["alpha"])
    admins = {r: seaweedfs.admin_client(seaweedfs.in_region(lake, r), operator) for r in REGIONS}

    matrix = _run(clients, names, admins, "alpha's S3 identity", capsys)
    wrong = [
        f"{cell} by {role}: {verdict}"
        for cell, row in matrix.items()
        for role, verdict in row.items()
        if verdict != _expected(role, *cell)
    ]
    assert not wrong, wrong

    projects.suspend(operator, lake, names["alpha"], stack)
    suspended = _run(clients, names, admins, "alpha suspended", capsys)
    assert {v for row in suspended.values() for v in row.values()} == {DENIED}

    projects.resume(operator, lake, names["alpha"], stack)
    assert _run(clients, names, admins, "alpha resumed", capsys) == matrix

    projects.delete(operator, lake, names["alpha"], stack, now=True)
    deleted = _run(clients, names, admins, "alpha deleted", capsys, gone="alpha")
    assert {v for row in deleted.values() for v in row.values()} == {DENIED}

    # Gamma keeps data in eu-central only: at home its keys are unknown, whatever it asks.
    home = _clients(lake, operator, names["gamma"])[HOME]
    for role, client in home.items():
        for zone in objectstore.ZONES:
            bucket = objectstore.bucket_name(names["gamma"], zone)
            for op in OPERATIONS:
                assert _verdict(_operation(client, op, bucket, "x")) == DENIED, (role, zone, op)

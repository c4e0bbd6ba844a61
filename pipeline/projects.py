"""A project's life: created with everything it owns, suspended and resumed, deleted by
crypto-shredding. Each step is the operator's.

Creating: everything the project owns is made here, by the operator, or not at all,
and its contract is kept.

Before anything is made, the operator claims the name with a record that only it can
write (`safeguards.projects`: check-and-set, so two creates cannot both win), and at the
end a slot for its endpoint's port. A name whose record says "created" is refused; one
whose record says "creating" resumes an interrupted create, each step being idempotent.
Without a record, every resource the project would own — transit keys, AppRoles, the
contract, the MLflow experiment and registered model — must not exist yet: anything
found is refused rather than adopted, since it would come with whatever permissions its
maker gave it. Names used by the platform itself are refused too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

import hvac
import hvac.exceptions

import contract as contracts
from safeguards import apikeys, credentials, keys, objectstore, openbao, residency
from safeguards import projects as tenancy
from safeguards.errors import ConfigError, NotFound, ServerError
from safeguards.openbao import openbao_errors
from safeguards.settings import Settings
from services.mlflow import launcher as mlflow
from services.prometheus import launcher as prometheus
from services.seaweedfs import launcher as seaweedfs

# Names the platform uses for its own keys, buckets and MLflow artifacts.
RESERVED = frozenset({seaweedfs.PLATFORM, mlflow.PLATFORM})


def _existing(operator: hvac.Client, settings: Settings, project: str) -> list[str]:
    """What of the project already exists, by kind and name (names are not data)."""
    lookups: list[tuple[str, str, Callable[[str], object]]] = [
        *(
            ("transit key", k, operator.secrets.transit.read_key)
            for k in keys.project_keys(project, settings.region_names)
        ),
        *(
            ("AppRole", i, operator.auth.approle.read_role)
            for i in keys.project_identities(project)
        ),
    ]
    found = []
    with contextlib.suppress(NotFound):
        credentials.read(operator, contracts.path(project))
        found.append(f"contract secret/{contracts.path(project)}")
    with openbao_errors(f"checking the names of project '{project}'"):
        for kind, name, read in lookups:
            try:
                read(name)
            except hvac.exceptions.InvalidPath:
                continue
            found.append(f"{kind} {name}")
    return found + mlflow.existing(settings, operator, project)


def claim(operator: hvac.Client, settings: Settings, project: str) -> None:
    """Claim `project`'s name for a create, or refuse with what is in the way."""
    keys.validate_project(project)
    if project in RESERVED:
        raise ConfigError(f"'{project}' is a name the platform uses for itself")
    record = tenancy.read(operator, project)
    if record is not None and record.state != "creating":
        raise ConfigError(f"project '{project}' exists already ({record.state})")
    if record is not None:
        return
    found = _existing(operator, settings, project)
    if found:
        raise ConfigError(
            f"project '{project}' cannot be created: {', '.join(found[:3])}"
            f"{' and more' if len(found) > 3 else ''} exist(s) already and were not made "
            "by `projects create`; nothing was adopted"
        )
    try:
        tenancy.write(operator, tenancy.Project(project, "creating", None), cas=0)
    except ServerError:
        raise ConfigError(f"project '{project}' is being created by someone else") from None


def create_project(
    operator: hvac.Client,
    settings: Settings,
    project: str,
    contract_text: str,
    reload_lake: Callable[[], None],
    regions: Sequence[str] | None = None,
) -> contracts.Contract:
    """Claim the name, then record the regions it may keep data in (`regions`, primary
    first; by default the home region), make its keys there, its identities and MLflow
    names, and keep its contract; on the stack also its S3 identities and SSE-KMS buckets
    in each of its regions' lakes (`reload_lake` makes the lakes re-read their
    identities)."""
    contracts.parse(contract_text)
    regions = list(regions or [settings.home_region])
    for region in regions:
        settings.lake_name(region)
    claim(operator, settings, project)
    if settings.profile == "stack":
        seaweedfs.provision_project(settings, operator, project, reload_lake, regions)
    else:
        keys.create_project(operator, settings, project, regions)
    mlflow.provision_project(settings, operator, project)
    contract = contracts.store(operator, project, contract_text)
    slot = tenancy.claim_slot(operator, project)
    tenancy.write(operator, tenancy.Project(project, "created", slot))
    if settings.job_dirs:
        keys.provide_job_dir(operator, settings, project)
    return contract


# -- a project's life after create -----------------------------------------------------


class Stack(Protocol):
    """What the lifecycle asks of the running stack (`Supervisor` or `ComposeStack`)."""

    def reload(self, name: str) -> None: ...
    def serve(self) -> None: ...


def reload_lakes(settings: Settings, stack: Stack) -> None:
    """Have every region's lake re-read its S3 identities."""
    for region in settings.region_names:
        stack.reload(settings.lake_name(region))


def _record(operator: hvac.Client, project: str, *states: str) -> tenancy.Project:
    record = tenancy.read(operator, keys.validate_project(project))
    if record is None:
        raise NotFound(f"project '{project}' does not exist")
    if record.state not in states:
        raise ConfigError(f"project '{project}' is {record.state}, not {' or '.join(states)}")
    return record


def _revoke(operator: hvac.Client, settings: Settings, project: str, stack: Stack) -> None:
    """Every credential of the project stops working: its identities' tokens lose their
    policies at once and no secret id is left to log in with, its MLflow users' passwords
    are replaced by ones nobody knows, its S3 identities leave the lake, and its endpoint
    (with it, every API key) stops: a project with a champion is served, so the stack
    serves again without it."""
    keys.apply_policies(operator, project, residency.allowed(operator, project), suspended=True)
    for who in keys.project_identities(project):
        openbao.destroy_secret_ids(operator, settings, who)
    mlflow.lock_users(settings, operator, project)
    if settings.profile == "stack":
        reload_lakes(settings, stack)
    if mlflow.has_champion(settings, operator, project):
        stack.serve()


def suspend(operator: hvac.Client, settings: Settings, project: str, stack: Stack) -> None:
    """Suspend a created project: `_revoke`, reversibly (`resume`)."""
    record = _record(operator, project, "created")
    tenancy.write(operator, replace(record, state="suspended"))
    _revoke(operator, settings, project, stack)


def resume(operator: hvac.Client, settings: Settings, project: str, stack: Stack) -> None:
    """Give a suspended project (or one whose deletion is still in its grace period) its
    policies, fresh credentials, MLflow passwords, S3 identities and endpoint back."""
    record = _record(operator, project, "suspended", "deleting")
    keys.apply_policies(operator, project, residency.allowed(operator, project))
    for who in keys.project_identities(project):
        openbao.ensure_credentials(operator, settings, who)
    if settings.job_dirs:
        keys.provide_job_dir(operator, settings, project)
    mlflow.unlock_users(settings, operator, project)
    tenancy.write(operator, replace(record, state="created", delete_after=None))
    if settings.profile == "stack":
        reload_lakes(settings, stack)
    if mlflow.has_champion(settings, operator, project):
        stack.serve()


def schedule_delete(
    operator: hvac.Client, settings: Settings, project: str, stack: Stack, grace: dt.timedelta
) -> str:
    """Suspend the project now and mark it for deletion once `grace` has passed; returns
    when (ISO 8601, UTC). `resume` cancels it meanwhile."""
    record = _record(operator, project, "created", "suspended")
    after = (dt.datetime.now(dt.UTC) + grace).isoformat(timespec="seconds")
    tenancy.write(operator, replace(record, state="deleting", delete_after=after))
    _revoke(operator, settings, project, stack)
    return after


def delete(
    operator: hvac.Client, settings: Settings, project: str, stack: Stack, now: bool = False
) -> int:
    """Crypto-shred a project whose grace period is over (or any live one, with `now`):
    its data keys destroyed first, so that whatever copy of its data exists anywhere is
    unreadable from that moment; then its identities, policies, records, MLflow names and
    users, endpoint slot and every object of its zones removed. What stays: its audit
    signing keys and the log (its history still verifies), its contract, and its record,
    marked deleted, so the name is never given again. Returns how many objects went."""
    states = ("created", "suspended", "deleting") if now else ("deleting",)
    record = _record(operator, project, *states)
    if not now and dt.datetime.fromisoformat(str(record.delete_after)) > dt.datetime.now(dt.UTC):
        raise ConfigError(
            f"project '{project}' is deleted after {record.delete_after} (or now, with --now)"
        )
    if record.state == "created":
        tenancy.write(operator, replace(record, state="suspended"))
        _revoke(operator, settings, project, stack)
    regions = residency.allowed(operator, project)
    keys.shred(operator, project, regions)
    for key_id in (k["key_id"] for k in apikeys.list_keys(operator, project)):
        apikeys.revoke(operator, project, key_id)
    with openbao_errors(f"deleting the records of project '{project}'"):
        for path in _RECORDS:
            operator.secrets.kv.v2.delete_metadata_and_all_versions(
                path.format(project=project), mount_point="secret"
            )
    keys.remove_identities(operator, settings, project)
    mlflow.remove_project(settings, operator, project)
    if settings.profile == "stack":
        objects = seaweedfs.remove_buckets(settings, operator, project, regions)
    else:
        objects = _remove_sandbox_files(settings, project, regions)
    prometheus.key_file(settings, project).unlink(missing_ok=True)
    tenancy.release_slot(operator, record)
    tenancy.write(operator, tenancy.Project(project, "deleted", None))
    if settings.profile == "stack":
        reload_lakes(settings, stack)
    return objects


# The records a deleted project leaves nothing of: its S3 keys and MLflow passwords.
_RECORDS = (
    "projects/{project}/s3",
    "projects/{project}/mlflow",
    "projects/{project}/mlflow-serving",
    "ingest/{project}/s3",
    "serving/{project}/s3",
)


def _remove_sandbox_files(settings: Settings, project: str, regions: Sequence[str]) -> int:
    """The project's sealed objects (its zones and DVC remote) in each of `regions`, its
    dataset repository and its endpoint's home; how many files went."""
    lakes = [settings.data_dir / "lake" / region for region in regions]
    trees = [
        *(
            lake / objectstore.bucket_name(project, zone)
            for lake in lakes
            for zone in objectstore.ZONES
        ),
        *(lake / f"{project}-dvc-remote" for lake in lakes),
        settings.data_dir / "datasets" / project,
        settings.data_dir / f"serving-{project}",
    ]
    removed = 0
    for tree in trees:
        if tree.is_dir():
            removed += sum(1 for p in tree.rglob("*") if p.is_file())
            shutil.rmtree(tree)
    return removed

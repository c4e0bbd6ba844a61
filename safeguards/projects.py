"""The platform's projects: which exist, in which state, and the slot each one's endpoint
listens on.

The operator keeps one record per project at ``secret/services/projects/<name>``: its
state (``creating`` while `projects create` runs, then ``created``; ``suspended``;
``deleting`` until its grace period ends, with the time it ends; ``deleted``, kept so the
name is never given again) and claims a slot for it at ``secret/services/slots/<n>``
(check-and-set: two creates never share one). A project's endpoint listens at
``port_base + 20 + slot``, so its address never changes. Only the operator reads or
writes either.
"""

from __future__ import annotations

from dataclasses import dataclass

import hvac
import hvac.exceptions

from safeguards import credentials, keys
from safeguards.errors import ConfigError, NotFound
from safeguards.openbao import openbao_errors
from safeguards.settings import SERVING_SLOTS

RECORDS = "services/projects"
SLOTS = "services/slots"
STATES = ("creating", "created", "suspended", "deleting", "deleted")
# The states in which a project's identities hold their policies and credentials.
LIVE = ("creating", "created")


@dataclass(frozen=True)
class Project:
    name: str
    state: str
    slot: int | None
    # When a deletion's grace period ends (ISO 8601, UTC), while the state is ``deleting``.
    delete_after: str | None = None


def record_path(project: str) -> str:
    return f"{RECORDS}/{keys.validate_project(project)}"


def read(operator: hvac.Client, project: str) -> Project | None:
    """`project`'s record, None if it has none."""
    try:
        record = credentials.read(operator, record_path(project))
    except NotFound:
        return None
    state, slot = record.get("state"), record.get("slot")
    if state not in STATES or (slot is not None and not slot.isdigit()):
        raise ConfigError(f"the record at secret/{record_path(project)} is malformed")
    return Project(
        project, state, int(slot) if slot is not None else None, record.get("delete_after")
    )


def write(operator: hvac.Client, project: Project, cas: int | None = None) -> None:
    """Write `project`'s record (with `cas`=0: only if it has none)."""
    record = {"state": project.state}
    if project.slot is not None:
        record["slot"] = str(project.slot)
    if project.delete_after is not None:
        record["delete_after"] = project.delete_after
    with openbao_errors(f"recording project '{project.name}'"):
        operator.secrets.kv.v2.create_or_update_secret(
            record_path(project.name), record, cas=cas, mount_point="secret"
        )


def names(operator: hvac.Client) -> list[str]:
    """Every project with a record, in any state."""
    with openbao_errors("listing the projects"):
        try:
            listed = operator.secrets.kv.v2.list_secrets(RECORDS, mount_point="secret")
        except hvac.exceptions.InvalidPath:
            return []
    return sorted(k for k in listed["data"]["keys"] if not k.endswith("/"))


def every(operator: hvac.Client) -> list[Project]:
    """Every project with a record, in any state."""
    found = (read(operator, name) for name in names(operator))
    return [p for p in found if p is not None]


def resting(operator: hvac.Client) -> set[str]:
    """The projects whose identities hold no policy and no credential: suspended, being
    deleted, deleted."""
    return {p.name for p in every(operator) if p.state not in LIVE}


def created(operator: hvac.Client) -> list[Project]:
    """Every project whose create finished, and that is neither suspended nor deleted."""
    return [p for p in every(operator) if p.state == "created"]


def release_slot(operator: hvac.Client, project: Project) -> None:
    """Give `project`'s endpoint slot back (a deleted project's)."""
    if project.slot is None:
        return
    with openbao_errors(f"releasing the slot of project '{project.name}'"):
        operator.secrets.kv.v2.delete_metadata_and_all_versions(
            f"{SLOTS}/{project.slot}", mount_point="secret"
        )


def claim_slot(operator: hvac.Client, project: str) -> int:
    """The lowest slot no other project holds, claimed for `project` (or the one it holds
    already, for a create that resumes)."""
    for slot in range(SERVING_SLOTS):
        path = f"{SLOTS}/{slot}"
        try:
            holder = credentials.read(operator, path).get("project")
        except NotFound:
            with openbao_errors(f"claiming a slot for project '{project}'"):
                try:
                    operator.secrets.kv.v2.create_or_update_secret(
                        path, {"project": project}, cas=0, mount_point="secret"
                    )
                except hvac.exceptions.InvalidRequest:
                    holder = credentials.read(operator, path).get("project")
                else:
                    return slot
        if holder == project:
            return slot
    raise ConfigError(f"every one of the platform's {SERVING_SLOTS} endpoint slots is taken")

"""Creating a project: everything it owns is made here, by the operator, or not at all.

Before anything is made, the operator claims the name with a record that only it can
write (``secret/services/projects/<name>``, check-and-set so two creates cannot both
win). A name whose record says "created" is refused; one whose record says "creating"
resumes an interrupted create, each step being idempotent. Without a record, every
resource the project would own — transit keys, AppRoles, the MLflow experiment and
registered model — must not exist yet: anything found is refused rather than adopted,
since it would come with whatever permissions its maker gave it. Names used by the
platform itself are refused too.
"""

from __future__ import annotations

from collections.abc import Callable

import hvac
import hvac.exceptions

from safeguards import credentials, keys
from safeguards.errors import ConfigError, NotFound
from safeguards.openbao import openbao_errors
from safeguards.settings import Settings
from services.mlflow import launcher as mlflow
from services.seaweedfs import launcher as seaweedfs

# Names the platform uses for its own keys, buckets and MLflow artifacts.
RESERVED = frozenset({seaweedfs.PLATFORM, mlflow.PLATFORM})


def _record(project: str) -> str:
    return f"services/projects/{project}"


def _state(operator: hvac.Client, project: str) -> str | None:
    try:
        record = credentials.read(operator, _record(project))
    except NotFound:
        return None
    state = record.get("state")
    if state not in ("creating", "created"):
        raise ConfigError(f"the record at secret/{_record(project)} is malformed")
    return state


def _existing(operator: hvac.Client, settings: Settings, project: str) -> list[str]:
    """What of the project already exists, by kind and name (names are not data)."""
    lookups: list[tuple[str, str, Callable[[str], object]]] = [
        *(
            ("transit key", k, operator.secrets.transit.read_key)
            for k in keys.project_keys(project)
        ),
        *(
            ("AppRole", i, operator.auth.approle.read_role)
            for i in keys.project_identities(project)
        ),
    ]
    found = []
    with openbao_errors(f"checking the names of project '{project}'"):
        for kind, name, read in lookups:
            try:
                read(name)
            except hvac.exceptions.InvalidPath:
                continue
            found.append(f"{kind} {name}")
    return found + mlflow.existing(settings, project)


def claim(operator: hvac.Client, settings: Settings, project: str) -> None:
    """Claim `project`'s name for a create, or refuse with what is in the way."""
    keys.validate_project(project)
    if project in RESERVED:
        raise ConfigError(f"'{project}' is a name the platform uses for itself")
    state = _state(operator, project)
    if state == "created":
        raise ConfigError(f"project '{project}' exists already")
    if state == "creating":
        return
    found = _existing(operator, settings, project)
    if found:
        raise ConfigError(
            f"project '{project}' cannot be created: {', '.join(found[:3])}"
            f"{' and more' if len(found) > 3 else ''} exist(s) already and were not made "
            "by `projects create`; nothing was adopted"
        )
    with openbao_errors(f"claiming the name of project '{project}'"):
        try:
            operator.secrets.kv.v2.create_or_update_secret(
                _record(project), {"state": "creating"}, cas=0, mount_point="secret"
            )
        except hvac.exceptions.InvalidRequest:
            raise ConfigError(f"project '{project}' is being created by someone else") from None


def create_project(
    operator: hvac.Client, settings: Settings, project: str, reload_lake: Callable[[], None]
) -> None:
    """Claim the name, then make the project's keys, identities and MLflow names; on the
    stack also its S3 identities and SSE-KMS buckets (`reload_lake` makes SeaweedFS
    re-read its identities)."""
    claim(operator, settings, project)
    if settings.profile == "stack":
        seaweedfs.provision_project(settings, operator, project, reload=reload_lake)
    else:
        keys.create_project(operator, settings, project)
    mlflow.provision_project(settings, operator, project)
    with openbao_errors(f"recording project '{project}'"):
        operator.secrets.kv.v2.create_or_update_secret(
            _record(project), {"state": "created"}, mount_point="secret"
        )

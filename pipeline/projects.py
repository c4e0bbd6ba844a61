"""Creating a project: everything it owns is made here, by the operator, or not at all,
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
from collections.abc import Callable

import hvac
import hvac.exceptions

import contract as contracts
from safeguards import credentials, keys
from safeguards import projects as tenancy
from safeguards.errors import ConfigError, NotFound, ServerError
from safeguards.openbao import openbao_errors
from safeguards.settings import Settings
from services.mlflow import launcher as mlflow
from services.seaweedfs import launcher as seaweedfs

# Names the platform uses for its own keys, buckets and MLflow artifacts.
RESERVED = frozenset({seaweedfs.PLATFORM, mlflow.PLATFORM})


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
    if record is not None and record.state == "created":
        raise ConfigError(f"project '{project}' exists already")
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
) -> contracts.Contract:
    """Claim the name, then make the project's keys, identities and MLflow names and keep
    its contract; on the stack also its S3 identities and SSE-KMS buckets (`reload_lake`
    makes SeaweedFS re-read its identities)."""
    contracts.parse(contract_text)
    claim(operator, settings, project)
    if settings.profile == "stack":
        seaweedfs.provision_project(settings, operator, project, reload=reload_lake)
    else:
        keys.create_project(operator, settings, project)
    mlflow.provision_project(settings, operator, project)
    contract = contracts.store(operator, project, contract_text)
    slot = tenancy.claim_slot(operator, project)
    tenancy.write(operator, tenancy.Project(project, "created", slot))
    return contract

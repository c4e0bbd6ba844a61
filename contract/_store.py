"""A project's contract in OpenBao: written once by the operator, read by the project.

The contract is kept as the file its team wrote (comments and all) at
``secret/projects/<project>/contract``, with its fingerprint. The operator may create it
but not change it, and only the project's own identities (workload, data steward,
endpoint) may read it: another project cannot learn what a team collects.
"""

from __future__ import annotations

import hvac
import hvac.exceptions
import yaml
from pydantic import ValidationError

from contract._schema import Contract
from safeguards import credentials, keys
from safeguards.errors import ConfigError, IntegrityError, NotFound
from safeguards.openbao import openbao_errors


def path(project: str) -> str:
    return f"projects/{keys.validate_project(project)}/contract"


def parse(text: str, where: str = "the contract") -> Contract:
    """A contract from its YAML text; one line naming what is wrong, never a value."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where} is not valid YAML{line}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} is a mapping of a contract's fields")
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'contract'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigError(f"{where} is invalid: {problems}") from None


def store(operator: hvac.Client, project: str, text: str) -> Contract:
    """Keep `text` as `project`'s contract; an identical one already kept is fine (a create
    that resumes), another is refused: nobody may change a project's contract."""
    contract = parse(text)
    try:
        kept: Contract | None = load(operator, project)
    except NotFound:
        kept = None
    if kept is None:
        record = {"yaml": text, "fingerprint": contract.fingerprint}
        with openbao_errors(f"storing the contract of project '{project}'"):
            try:
                operator.secrets.kv.v2.create_or_update_secret(
                    path(project), record, cas=0, mount_point="secret"
                )
            except hvac.exceptions.InvalidRequest:
                kept = load(operator, project)
    if kept is not None and kept.fingerprint != contract.fingerprint:
        raise ConfigError(f"project '{project}' has another contract already")
    return contract


def load(bao: hvac.Client, project: str) -> Contract:
    """`project`'s contract, checked against the fingerprint kept with it."""
    try:
        record = credentials.read(bao, path(project))
    except NotFound:
        raise NotFound(f"project '{project}' has no contract; create it with --contract") from None
    contract = parse(record.get("yaml", ""), f"the contract of project '{project}'")
    if contract.fingerprint != record.get("fingerprint"):
        raise IntegrityError(f"the contract of project '{project}' does not match its fingerprint")
    return contract


def text(bao: hvac.Client, project: str) -> str:
    """The contract as its team wrote it."""
    return credentials.read(bao, path(project))["yaml"]

"""Where a project's data may live: its allowed regions, the first its primary.

The operator records them at ``secret/projects/<project>/residency`` when it creates the
project; every identity of the project reads them and none can change them. Each region
has its own lake and its own keys (`safeguards.keys`), and a project's identities hold
keys in its regions only, so OpenBao and the lakes refuse the rest whatever a client
does. This module is the clear refusal before that: a process pinned to a region
(``HIPAA_MLOPS_REGION``) that is not one of the project's reaches none of its data, and
the refusal is audited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import NoReturn

import hvac

from safeguards import credentials
from safeguards.audit import AuditLog
from safeguards.errors import AccessDenied, ConfigError, NotFound
from safeguards.openbao import openbao_errors
from safeguards.settings import Settings


def record_path(project: str) -> str:
    return f"projects/{project}/residency"


def write(
    operator: hvac.Client,
    settings: Settings,
    project: str,
    regions: Sequence[str],
    grow: bool = False,
) -> tuple[str, ...]:
    """Record `project`'s regions (primary first), each one of the platform's. A project's
    regions are fixed at create: its keys, buckets and copies follow them (`grow`: the
    platform's own, which gain each region its lakes are started in). Returns them."""
    chosen = tuple(dict.fromkeys(regions))
    unknown = [r for r in chosen if r not in settings.region_names]
    if not chosen or unknown:
        raise ConfigError(
            f"a project's regions are among the platform's: {', '.join(settings.region_names)}"
        )
    try:
        held = allowed(operator, project)
    except ConfigError:
        held = ()
    if grow:
        chosen = tuple(dict.fromkeys((*held, *chosen)))
    elif held and held != chosen:
        raise ConfigError(
            f"project '{project}' keeps its data in {', '.join(held)}; regions are fixed "
            "when a project is created"
        )
    with openbao_errors(f"recording the regions of project '{project}'"):
        operator.secrets.kv.v2.create_or_update_secret(
            record_path(project), {"regions": ",".join(chosen)}, mount_point="secret"
        )
    return chosen


def allowed(bao: hvac.Client, project: str) -> tuple[str, ...]:
    """`project`'s regions, primary first, read as any of its identities."""
    try:
        record = credentials.read(bao, record_path(project))
    except NotFound as exc:
        raise ConfigError(f"project '{project}' has no recorded regions") from exc
    regions = tuple(r for r in record.get("regions", "").split(",") if r)
    if not regions:
        raise ConfigError(f"project '{project}' has no recorded regions")
    return regions


def region_for(settings: Settings, bao: hvac.Client, project: str) -> str:
    """The region this process reaches `project`'s data in: the one it is pinned to, if
    the project may keep data there, else its primary. A pinned process outside the
    project's regions is refused, and the refusal audited when the identity signs."""
    regions = allowed(bao, project)
    if settings.region is None:
        return regions[0]
    if settings.region not in regions:
        refuse(settings, bao, project, settings.region, "reach")
    return settings.region


def refuse(
    settings: Settings, bao: hvac.Client, project: str, region: str, action: str
) -> NoReturn:
    """Audit (as `bao`'s identity, if it signs) and raise the refusal to `action` the
    project's data in `region`."""
    log = AuditLog.of(settings, bao)
    # An identity without an audit signing key (an endpoint) cannot append: the error
    # below ends its start, in its own log.
    with contextlib.suppress(ConfigError, AccessDenied):
        log.append(
            log.signer, f"residency.{action}", f"project/{project}", "refused", region=region
        )
    raise AccessDenied(
        f"project '{project}' may not keep data in region '{region}'; its regions are "
        f"{', '.join(allowed(bao, project))}"
    )

"""The `hipaa-mlops` command line.

Errors from the security core are printed as one line, with their message only: never a
traceback with local variables, which could hold PHI or secrets.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import contract as contracts
from model.train import ALGORITHMS, Evaluation, TrainConfig
from monitoring import lake
from pipeline import projects
from pipeline.training import ModelSteward
from safeguards import apikeys, keys, logs, objectstore, openbao, residency
from safeguards import projects as tenancy
from safeguards.actions import Operator
from safeguards.audit import AuditLog
from safeguards.errors import ConfigError, GateRefused, SafeguardError, ServerError
from safeguards.files import write_private
from safeguards.settings import Settings, load_settings
from sandbox import deidentify
from sandbox.steps import DataSteward
from sandbox.synth import COHORTS, SYNTHESIZERS
from sandbox.versions import DatasetRepo
from services.compose import ComposeStack, stack_for
from services.serving import launcher as serving

if TYPE_CHECKING:
    import hvac

    from pipeline.retrain import Retrain

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Run the ML lifecycle for healthcare under HIPAA's technical safeguards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(help="Start, stop and inspect the stack's servers.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
keys_app = typer.Typer(help="Per-project keys (CMKs) in OpenBao transit.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(audit_app, name="audit")
data_app = typer.Typer(
    help="DATA: synthetic patients, ingestion, de-identification, versions.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
projects_app = typer.Typer(
    help="Projects: the unit of tenancy and isolation.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(projects_app, name="projects")
model_app = typer.Typer(
    help="TRAIN: train, evaluate, promote through the gate, roll back, model cards.",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")
serving_app = typer.Typer(
    help="DEPLOY: the HTTPS endpoint serving a project's champion model.", no_args_is_help=True
)
serving_keys_app = typer.Typer(
    help="API keys of the endpoint: one per client, bound to one project, stored hashed.",
    no_args_is_help=True,
)
serving_app.add_typer(serving_keys_app, name="keys")
app.add_typer(serving_app, name="serving")
monitor_app = typer.Typer(
    help="MONITOR: drift and performance of the served model, reports, reported outcomes.",
    no_args_is_help=True,
)
app.add_typer(monitor_app, name="monitor")

console = Console()
# An error is one line however long: never wrapped at the terminal's width.
errors = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    return load_settings()


def actor() -> str:
    return f"operator:{getpass.getuser()}"


def edge(func: Callable[P, R]) -> Callable[P, R]:
    """Render safeguard errors as one clear line and a non-zero exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SafeguardError as exc:
            errors.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:
            # A fault of ours, not bad input: its message could carry the data it was
            # handling, so only its type is shown.
            errors.print(
                f"[bold red]error:[/] unexpected {type(exc).__name__}; its message is withheld "
                "as it may hold data values",
                highlight=False,
            )
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
@edge
def main() -> None:
    # Whatever a command writes (datasets, reports, cards, logs) is its user's alone.
    os.umask(0o077)
    config = settings()
    logs.configure(config.log_level, fmt=config.log_format)


# -- stack -----------------------------------------------------------------------------


class StackProfile(StrEnum):
    SANDBOX = "sandbox"
    STACK = "stack"


Profile = Annotated[
    StackProfile | None,
    typer.Option(
        help="sandbox (no SeaweedFS) or stack (every server); default HIPAA_MLOPS_PROFILE."
    ),
]


@stack_app.command("up")
@edge
def stack_up(profile: Profile = None) -> None:
    """Start the profile's servers, wait until each is healthy over TLS: native processes,
    or with HIPAA_MLOPS_RUNTIME=compose the compose stack's containers."""
    cfg = settings()
    # The flag is the setting for this start: every server is launched with it.
    if profile is not None:
        cfg = cfg.model_copy(update={"profile": profile.value})
    with console.status(f"starting the {cfg.profile} stack ({cfg.runtime})"):
        states = stack_for(cfg).up(cfg.profile)
    _print_states(states)


@stack_app.command("down")
@edge
def stack_down(
    volumes: Annotated[
        bool,
        typer.Option(help="The compose stack: delete its volumes too (every key, object, log)."),
    ] = False,
) -> None:
    """Stop every server of the stack, also after a crashed `stack up` (the compose
    stack's volumes stay unless --volumes)."""
    stack = stack_for(settings())
    if not volumes:
        stack.down()
    elif isinstance(stack, ComposeStack):
        stack.remove()
    else:
        raise ConfigError(
            "only the compose stack has volumes; the native one keeps its data in "
            "the data directory"
        )
    console.print("stack stopped" + (", its volumes deleted" if volumes else ""))


@stack_app.command("status")
@edge
def stack_status() -> None:
    """Show each server's process and health."""
    _print_states(stack_for(settings()).status())


def _print_states(states: list) -> None:  # type: ignore[type-arg]
    table = Table("service", "pid", "state", "health check")
    for s in states:
        colour = {"running": "green", "stopped": "dim"}.get(s.state, "red")
        table.add_row(s.name, str(s.pid or "-"), f"[{colour}]{s.state}[/]", s.url)
    console.print(table)


# -- audit -----------------------------------------------------------------------------


@audit_app.command("verify")
@edge
def audit_verify() -> None:
    """Verify every entry, the chain and every anchor, as the auditor identity."""
    cfg = settings()
    result = AuditLog.of(cfg, openbao.login(cfg, "auditor")).verify()
    console.print(
        f"[green]audit chain verified[/]: {result.entries} entries signed by "
        f"{len(result.signers)} identities, {result.anchors} anchors, the last at entry "
        f"{result.head_seq}"
    )


# -- keys ------------------------------------------------------------------------------

Project = Annotated[str, typer.Argument(help="Project name: lowercase letters, digits, dashes.")]


def operator(cfg: Settings) -> Operator:
    """The operator, logged in once for the command; every change it makes is audited."""
    return Operator(cfg, openbao.login(cfg, "operator"), actor())


@projects_app.command("create")
@edge
def projects_create(
    project: Project,
    contract: Annotated[
        Path,
        typer.Option(
            "--contract",
            help="The project's data contract (YAML), or a shipped example by name: "
            f"{', '.join(contracts.EXAMPLES)}.",
        ),
    ],
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region",
            help="A region the project may keep data in (repeat it; the first is primary). "
            "Default: the platform's home region. Fixed once created.",
        ),
    ] = None,
) -> None:
    """Create a project from its data contract: its regions, its keys in each, policies,
    AppRoles and MLflow names, the contract kept in OpenBao; on the stack also its S3
    identities and zone buckets with SSE-KMS in each region's lake. Refuses a name that
    exists, or whose resources exist without `projects create` having made them."""
    cfg = settings()
    text = contracts.load_file(contract)
    ops = operator(cfg)
    stack = stack_for(cfg)
    made = ops.project(
        "projects.create",
        project,
        lambda: projects.create_project(
            ops.bao, cfg, project, text, lambda: projects.reload_lakes(cfg, stack), region
        ),
    )
    regions = residency.allowed(ops.bao, project)
    console.print(
        f"project [bold]{project}[/] keeps its data in {', '.join(regions)} (primary "
        f"{regions[0]}, key {keys.key_name(project, regions[0])}) and has contract "
        f"{made.name} ({len(made.columns)} columns, {len(made.features)} features)"
    )


@projects_app.command("list")
@edge
def projects_list() -> None:
    """List every project: its state, its endpoint's slot, its contract."""
    op = openbao.login(settings(), "operator")
    table = Table("project", "state", "regions", "slot", "contract", "deleted after")
    for record in tenancy.every(op):
        contract = contracts.load(op, record.name).name if record.state != "creating" else ""
        table.add_row(
            record.name,
            record.state,
            ", ".join(residency.allowed(op, record.name)) if contract else "",
            "" if record.slot is None else str(record.slot),
            contract,
            record.delete_after or "",
        )
    console.print(table)


@projects_app.command("suspend")
@edge
def projects_suspend(project: Project) -> None:
    """Suspend a project: every token of its identities loses its policy at once, its
    secret ids, MLflow passwords and S3 keys stop working, its endpoint (and so every API
    key) stops. `projects resume` undoes it."""
    cfg = settings()
    ops = operator(cfg)
    ops.project(
        "projects.suspend", project, lambda: projects.suspend(ops.bao, cfg, project, stack_for(cfg))
    )
    console.print(f"project {project} is suspended: none of its credentials works")


@projects_app.command("resume")
@edge
def projects_resume(project: Project) -> None:
    """Resume a suspended project (or cancel its deletion during the grace period): its
    policies, fresh secret ids, MLflow passwords, S3 keys and endpoint come back."""
    cfg = settings()
    ops = operator(cfg)
    ops.project(
        "projects.resume", project, lambda: projects.resume(ops.bao, cfg, project, stack_for(cfg))
    )
    console.print(f"project {project} is resumed")


@projects_app.command("delete")
@edge
def projects_delete(
    project: Project,
    confirm: Confirm = None,
    grace_days: Annotated[
        int, typer.Option(min=0, help="Days the project stays suspended before deletion.")
    ] = 7,
    now: Annotated[
        bool, typer.Option("--now", help="Delete at once, without a grace period.")
    ] = False,
) -> None:
    """Delete a project by crypto-shredding: suspended at once, then (after the grace
    period, when run again; or with --now) every data key destroyed, its identities,
    policies, records, MLflow names and users removed, its buckets emptied. The audit log,
    its signing keys and the contract stay."""
    cfg = settings()
    ops = operator(cfg)
    op, stack = ops.bao, stack_for(cfg)
    record = tenancy.read(op, keys.validate_project(project))
    if now or (record is not None and record.state == "deleting"):
        _confirm(project, confirm, "to destroy its keys and all of its data, for good")
        objects = ops.project(
            "projects.delete", project, lambda: projects.delete(op, cfg, project, stack, now)
        )
        regions = residency.allowed(op, project)
        console.print(
            f"project {project} is deleted: {len(keys.data_keys(project, regions))} keys "
            f"destroyed in {', '.join(regions)}, {objects} objects removed; its audit record "
            "stays"
        )
        return
    _confirm(project, confirm, "to suspend it and delete it after the grace period")
    after = ops.project(
        "projects.delete.schedule",
        project,
        lambda: projects.schedule_delete(op, cfg, project, stack, dt.timedelta(days=grace_days)),
    )
    console.print(
        f"project {project} is suspended and will be deleted by `projects delete {project}` "
        f"after {after}; `projects resume {project}` cancels"
    )


@projects_app.command("show")
@edge
def projects_show(
    project: Project,
    raw: Annotated[bool, typer.Option("--yaml", help="Print the contract file only.")] = False,
) -> None:
    """Show a project's state and contract (every column's role, type and allowed values,
    and what de-identification keeps), its regions, and where each zone of its data is in
    each, under which key."""
    ops = operator(settings())
    op = ops.bao
    if raw:
        print(ops.project("projects.show", project, lambda: contracts.text(op, project)), end="")
        return
    contract = ops.project("projects.show", project, lambda: contracts.load(op, project))
    record = tenancy.read(op, project)
    state = "no record" if record is None else record.state
    console.print(
        f"[bold]{project}[/] ({state}): contract {contract.name} version {contract.version} "
        f"({contract.fingerprint})\n{contract.description}"
    )
    table = Table("column", "role", "type", "unit", "allowed", "missing", "Safe Harbor")
    for c in contract.columns:
        allowed = f"{c.range[0]:g}-{c.range[1]:g}" if c.range else ", ".join(c.categories or ())
        treatment = deidentify.action(c) if deidentify.category(c) is not None else "kept"
        if c.role == contracts.Role.LABEL:
            treatment = f"kept; {c.meaning}"
        table.add_row(
            c.name + (f" (from {c.source})" if c.source else ""),
            c.role.value
            + (f": {c.category.value}" if c.category else "")
            + (f": {c.kind.value}" if c.kind else ""),
            c.type.value,
            c.unit or "",
            allowed,
            "yes" if c.missing else "",
            treatment,
        )
    console.print(table)
    console.print(f"de-identified columns: {', '.join(contract.deidentified_types)}")
    groups = ", ".join(g.column for g in contract.subgroups) or "none"
    console.print(
        f"features: {len(contract.features)}; label: {contract.label}; subgroups: {groups}"
    )
    cfg = settings()
    regions = residency.allowed(op, project)
    console.print(f"regions: {', '.join(regions)} (primary {regions[0]})")
    where = Table("region", "zone", "where", "key")
    for region in regions:
        for zone in objectstore.ZONES:
            bucket = objectstore.bucket_name(project, zone)
            place = (
                f"{cfg.lake_url(region)}/{bucket}"
                if cfg.profile == "stack"
                else f"{cfg.data_dir / 'lake' / region / bucket}/ (sealed files)"
            )
            where.add_row(region, zone, place, objectstore.zone_key(project, zone, region))
    console.print(where)


RegionOpt = Annotated[
    str | None,
    typer.Option("--region", help="The region of the key (default: the project's primary)."),
]


def _key_region(op: hvac.Client, project: str, region: str | None) -> str:
    regions = residency.allowed(op, project)
    if region is not None and region not in regions:
        raise ConfigError(f"project '{project}' has no keys in region '{region}'")
    return region or regions[0]


@keys_app.command("show")
@edge
def keys_show(project: Project) -> None:
    """Show a project's key versions, in each of its regions."""
    op = openbao.login(settings(), "operator")
    table = Table("region", "key", "latest version", "oldest that opens", "deletable")
    for region in residency.allowed(op, project):
        info = keys.describe(op, project, region)
        table.add_row(
            region,
            info["key"],
            str(info["latest_version"]),
            str(info["min_decryption_version"]),
            str(info["deletion_allowed"]).lower(),
        )
    console.print(table)


@keys_app.command("rotate")
@edge
def keys_rotate(project: Project, region: RegionOpt = None) -> None:
    """Add a key version: new objects use it, older ones still open."""
    ops = operator(settings())
    where = _key_region(ops.bao, project, region)
    version = ops.rotate_key(project, where)
    console.print(f"project {project}: key version {version} is now current in {where}")


@keys_app.command("revoke-below")
@edge
def keys_revoke_below(
    project: Project,
    version: Annotated[int, typer.Argument(min=1, help="Oldest key version still allowed.")],
    region: RegionOpt = None,
) -> None:
    """Refuse to open anything wrapped by key versions older than VERSION."""
    ops = operator(settings())
    where = _key_region(ops.bao, project, region)
    ops.revoke_below(project, where, version)
    console.print(f"project {project}: key versions below {version} revoked in {where}")


def _confirm(project: str, confirm: str | None, what: str) -> None:
    """Go on only once the project's name is typed again (`--confirm` when not at a
    terminal)."""
    if confirm is None:
        if not sys.stdin.isatty():
            console.print("[red]refused:[/] pass --confirm PROJECT when not at a terminal")
            raise typer.Exit(2)
        confirm = typer.prompt(f"Type '{project}' {what}")
    if confirm != project:
        console.print("[red]refused:[/] the confirmation does not match the project name")
        raise typer.Exit(2)


Confirm = Annotated[str | None, typer.Option(help="Type the project name again to confirm.")]


@keys_app.command("shred")
@edge
def keys_shred(project: Project, confirm: Confirm = None) -> None:
    """Destroy a project's keys in every region: all of its data becomes unreadable, for
    good."""
    _confirm(project, confirm, "to destroy its key and all of its data")
    ops = operator(settings())
    ops.shred(project, residency.allowed(ops.bao, project))
    console.print(f"project {project}: key destroyed; its data can no longer be decrypted")


# -- data ------------------------------------------------------------------------------

ProjectOpt = Annotated[
    str, typer.Option("--project", "-p", help="The project the data belongs to.")
]
Name = Annotated[str, typer.Argument(help="Dataset name (letters, digits, - _ .).")]


@data_app.command("synth")
@edge
def data_synth(
    name: Name,
    project: ProjectOpt,
    rows: Annotated[int, typer.Option(min=1, max=10_000_000, help="Rows to generate.")] = 10_000,
    cohort: Annotated[
        str, typer.Option(help=f"The diabetes example's cohort: {', '.join(COHORTS)}.")
    ] = "baseline",
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same rows.")] = 0,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="A de-identified dataset to mirror: its synthetic twin, with new identifiers.",
        ),
    ] = None,
    revision: Annotated[str, typer.Option(help="Revision of --from.")] = "HEAD",
    synthesizer: Annotated[
        str,
        typer.Option(
            help=f"One of: {', '.join(SYNTHESIZERS)} (SDV is an opt-in extra under the "
            "Business Source License 1.1)."
        ),
    ] = "copula",
) -> None:
    """Generate a privacy-gated synthetic PHI-shaped table of the project's contract and
    version it: from the contract itself, or as the twin of a de-identified dataset."""
    what = f"a twin of {source}" if source else f"{rows:,} records"
    with console.status(f"synthesising {what}"):
        meta = DataSteward(settings(), project).synth(
            name, rows, cohort, seed, source, revision, synthesizer
        )
    gate = meta["privacy_gate"]
    console.print(
        f"dataset {name} @ {meta['revision'][:12]}: {meta['rows']:,} rows; privacy gate "
        f"passed (exact copies {gate['exact_copy_rate']:.2%}, "
        f"DCR ratio {gate['dcr_ratio']:.2f})"
    )


Mapping = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Rename a source column: SOURCE=COLUMN (repeat it); the contract's own `source` "
        "names apply too.",
    ),
]


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        source, sep, column = pair.partition("=")
        if not sep or not source or not column:
            raise ConfigError("a mapping is SOURCE=COLUMN, e.g. --map glu=fasting_glucose")
        mapping[source] = column
    return mapping


@data_app.command("ingest")
@edge
def data_ingest(
    project: ProjectOpt,
    name: Annotated[str, typer.Option(help="Name in the raw-phi zone.")],
    file: Annotated[Path | None, typer.Option(help="A raw table: .parquet or .csv.")] = None,
    mapping: Mapping = None,
    synthetic: Annotated[
        str | None, typer.Option(help="Or: a synthetic dataset to ingest as if it were raw.")
    ] = None,
) -> None:
    """Admit a raw table (PHI) into the project's raw-phi zone after checking it against
    the project's contract."""
    if (file is None) == (synthetic is None):
        raise ConfigError("give exactly one of --file and --synthetic")
    steward = DataSteward(settings(), project)
    with console.status("checking and storing the raw table"):
        if file is not None:
            rows = steward.ingest_file(name, file, _mapping(mapping or []))
        else:
            rows = steward.ingest(name, steward.repo.read(str(synthetic)))
    console.print(f"raw table {name} ({rows:,} rows) stored in {project}-raw-phi")


@data_app.command("deidentify")
@edge
def data_deidentify(
    name: Name,
    project: ProjectOpt,
    source: Annotated[str, typer.Option(help="Raw table in the raw-phi zone.")],
) -> None:
    """De-identify a raw table (Safe Harbor) into a versioned dataset with its evidence."""
    cfg = settings()
    with console.status("de-identifying"):
        meta = DataSteward(cfg, project).deidentify(name, source)
    report = cfg.data_dir / "datasets" / project / f"{name}.evidence.html"
    console.print(
        f"dataset {name} @ {meta['revision'][:12]}: {meta['rows']:,} rows, "
        f"evidence {meta['evidence_id'][:19]}\nreport: {report}"
    )


@data_app.command("replicate")
@edge
def data_replicate(
    project: ProjectOpt,
    to: Annotated[str, typer.Option("--to", help="One of the project's other regions.")],
    zone: Annotated[
        list[str] | None,
        typer.Option(help="A zone to copy (repeat it); default: every zone but raw PHI."),
    ] = None,
) -> None:
    """Copy a project's objects from its primary region into another of its regions, each
    sealed again under that region's key. A region outside the project's is refused and
    the refusal audited."""
    cfg = settings()
    chosen = zone or [z for z in objectstore.ZONES if z != objectstore.RAW_ZONE]
    copied = 0
    for name in chosen:
        role = "ingest" if objectstore.ROLES["ingest"].get(name) == "rw" else "workload"
        bao = openbao.login(cfg, objectstore.identity_of(role, project))
        source = objectstore.store_with(cfg, bao, project, role)
        copied += objectstore.replicate(cfg, bao, source, role, to, name)
    console.print(f"{copied} objects of {project} copied from its primary region into {to}")


@data_app.command("versions")
@edge
def data_versions(
    project: ProjectOpt,
    name: Annotated[str | None, typer.Argument(help="Only this dataset.")] = None,
) -> None:
    """List dataset versions, newest first."""
    cfg = settings()
    repo = DatasetRepo(cfg, project, openbao.login(cfg, keys.ingest_identity(project)))
    table = Table("dataset", "zone", "revision", "rows", "content hash", "evidence", "created")
    for v in repo.versions(name):
        table.add_row(
            v["name"],
            v["zone"],
            v["revision"][:12],
            f"{v['rows']:,}",
            v["content_hash"][:19],
            (v["evidence_id"] or "-")[:19],
            v["created"],
        )
    console.print(table)


@data_app.command("show")
@edge
def data_show(
    name: Name,
    project: ProjectOpt,
    revision: Annotated[str, typer.Option(help="A revision from `data versions`.")] = "HEAD",
) -> None:
    """Show a dataset version's metadata and schema (never its values)."""
    cfg = settings()
    repo = DatasetRepo(cfg, project, openbao.login(cfg, keys.ingest_identity(project)))
    console.print_json(json.dumps(repo.version(name, revision)))


# -- model -----------------------------------------------------------------------------

Version = Annotated[str, typer.Argument(help="A registered version number.")]


def _evaluation_table(title: str, evaluation: Evaluation) -> Table:
    table = Table("metric", "value", title=title)
    for metric, value in evaluation.metrics().items():
        table.add_row(metric, f"{value:.4f}")
    return table


@model_app.command("train")
@edge
def model_train(
    project: ProjectOpt,
    dataset: Annotated[str, typer.Option(help="A de-identified dataset.")],
    revision: Annotated[str, typer.Option(help="Its revision (`data versions`).")] = "HEAD",
    algorithm: Annotated[str, typer.Option(help=f"One of: {', '.join(ALGORITHMS)}.")] = "logistic",
    seed: Annotated[int, typer.Option(help="Seed of the split and the model.")] = 0,
    c: Annotated[
        float, typer.Option("--C", min=1e-6, help="Logistic: inverse regularisation.")
    ] = 1.0,
    learning_rate: Annotated[
        float, typer.Option(min=1e-4, max=1.0, help="Gradient boosting: learning rate.")
    ] = 0.1,
) -> None:
    """Train on a de-identified dataset version, log the run with its lineage, register it."""
    config = TrainConfig(algorithm=algorithm, seed=seed, C=c, learning_rate=learning_rate)
    steward = ModelSteward(settings(), project)
    with console.status("training") as status:
        trained = steward.train(dataset, revision, config, actor=actor(), progress=status.update)
    console.print(
        _evaluation_table(
            f"{steward.registry.name} version {trained.registered.version} "
            f"(run {trained.registered.run_id[:12]})",
            trained.evaluation,
        )
    )


@model_app.command("import")
@edge
def model_import(
    file: Annotated[Path, typer.Argument(help="A scikit-learn pipeline (.skops) or .onnx model.")],
    project: ProjectOpt,
    dataset: Annotated[str, typer.Option(help="The de-identified dataset to validate it on.")],
    revision: Annotated[str, typer.Option(help="Its revision (`data versions`).")] = "HEAD",
) -> None:
    """Register a model your team trained elsewhere, validated on every row of a
    de-identified dataset version; promote it through the gate like any other."""
    steward = ModelSteward(settings(), project)
    with console.status("importing") as status:
        trained = steward.import_model(file, dataset, revision, actor(), status.update)
    console.print(
        _evaluation_table(
            f"{steward.registry.name} version {trained.registered.version} (imported, "
            f"validated on every row of {dataset})",
            trained.evaluation,
        )
    )


@model_app.command("evaluate")
@edge
def model_evaluate(
    version: Version,
    project: ProjectOpt,
    dataset: Annotated[
        str | None,
        typer.Option(help="Score every row of this dataset instead of the held-out rows."),
    ] = None,
    revision: Annotated[str, typer.Option(help="Revision of --dataset.")] = "HEAD",
) -> None:
    """Score a registered version on its held-out rows, or on another dataset version."""
    with console.status("evaluating"):
        evaluation = ModelSteward(settings(), project).evaluate(version, dataset, revision)
    where = f"dataset {dataset}" if dataset else "its held-out rows"
    console.print(_evaluation_table(f"version {version} on {where}", evaluation))


@model_app.command("promote")
@edge
def model_promote(
    version: Version,
    project: ProjectOpt,
    override: Annotated[
        str | None,
        typer.Option(
            help="Promote past failed metric checks (never lineage or the PHI scan), for "
            "this reason, which the audit log keeps."
        ),
    ] = None,
) -> None:
    """Run the promotion gate; move `champion` to VERSION only if every check passes, or
    an operator overrides failed metric checks with a reason."""
    with console.status("running the promotion gate"):
        promotion = ModelSteward(settings(), project).promote(
            version, approver=actor(), override=override
        )
    table = Table("check", "result", "detail", title=f"promotion gate for version {version}")
    for check in promotion.decision.checks:
        table.add_row(
            check.name, "[green]pass[/]" if check.passed else "[red]FAIL[/]", check.reason
        )
    console.print(table)
    if not promotion.decision.approved:
        failed = ", ".join(c.name for c in promotion.decision.failed)
        raise GateRefused(f"version {version} not promoted: {failed} failed")
    if promotion.champion is None:
        _serve(project)
    overridden = (
        f"; checks overridden: {', '.join(c.name for c in promotion.decision.failed)}"
        if promotion.decision.overridden
        else ""
    )
    console.print(
        f"version {version} is the champion (was {promotion.champion or 'none'}){overridden}"
    )


def _serve(project: str) -> None:
    """A project's first champion: the stack starts its endpoint."""
    try:
        stack_for(settings()).serve()
    except SafeguardError as exc:
        raise ServerError(
            f"the champion is promoted, but its endpoint did not start: {exc}"
        ) from None
    cfg = settings()
    url = serving.project_url(cfg, openbao.login(cfg, "operator"), project)
    console.print(f"project {project} is served at {url}")


@model_app.command("rollback")
@edge
def model_rollback(project: ProjectOpt) -> None:
    """Move `champion` back to the version that held it before."""
    before, after = ModelSteward(settings(), project).rollback(approver=actor())
    console.print(f"champion moved back from version {before} to version {after}")


@model_app.command("versions")
@edge
def model_versions(project: ProjectOpt) -> None:
    """List registered versions with their dataset and metrics; mark the champion."""
    steward = ModelSteward(settings(), project)
    champion = steward.registry.champion()
    table = Table("version", "champion", "dataset", "revision", "run", "created")
    for v in steward.registry.versions():
        table.add_row(
            str(v.version),
            "yes" if champion is not None and champion.version == v.version else "",
            v.tags.get("dataset.name", "-"),
            v.tags.get("dataset.revision", "-")[:12],
            str(v.run_id)[:12],
            dt.datetime.fromtimestamp(v.creation_timestamp / 1000, dt.UTC).isoformat(
                timespec="seconds"
            ),
        )
    console.print(table)


@model_app.command("card")
@edge
def model_card(
    version: Version,
    project: ProjectOpt,
    out: Annotated[Path, typer.Option(help="Directory to write the card into.")] = Path("."),
) -> None:
    """Write a version's model card (Markdown) and its calibration plot."""
    path = ModelSteward(settings(), project).card(version, out)
    console.print(f"model card: {path}")


@model_app.command("package")
@edge
def model_package(
    version: Version,
    project: ProjectOpt,
    out: Annotated[
        Path | None,
        typer.Option(help="The archive to write (default: <project>-v<version>.tar.gz)."),
    ] = None,
) -> None:
    """Pack a version the gate approved as the archive a SageMaker endpoint unpacks into
    /opt/ml/model for the serving image: its model, its contract and a manifest.
    Audited."""
    archive = out or Path(f"{project}-v{version}.tar.gz")
    path = ModelSteward(settings(), project).package(version, archive, actor())
    console.print(f"package of version {version}: {path} (serve it with the app image: serve)")


# -- serving ---------------------------------------------------------------------------


@serving_app.command("score")
@edge
def serving_score(
    file: Annotated[Path, typer.Argument(help="Records to score: .csv or .parquet.")],
    project: ProjectOpt,
    out: Annotated[Path, typer.Option(help="Where to write the scores: .csv or .parquet.")],
    mapping: Mapping = None,
    on_invalid: Annotated[
        str,
        typer.Option(
            help="refuse: an invalid row refuses the file; report: score the valid rows "
            "and list the invalid ones."
        ),
    ] = "refuse",
    capture_rows: Annotated[
        bool,
        typer.Option("--capture/--no-capture", help="Capture the scored rows for monitoring."),
    ] = True,
) -> None:
    """Score a file of records with the project's champion, in the file's row order,
    as its workload; written to --out (0600) whole or not at all."""
    from pipeline.scoring import score_file

    if on_invalid not in ("refuse", "report"):
        raise ConfigError("--on-invalid is refuse or report")
    with Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("scoring", total=None)
        scored = score_file(
            settings(),
            project,
            file,
            out,
            actor(),
            _mapping(mapping or []),
            report=on_invalid == "report",
            capture_rows=capture_rows,
            advance=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"{scored.scored:,} of {scored.rows:,} rows scored by version {scored.model_version} "
        f"into {out}"
        + (f"; {len(scored.problems):,} problem(s) listed there" if scored.problems else "")
    )


@serving_keys_app.command("create")
@edge
def serving_keys_create(
    project: ProjectOpt,
    client: Annotated[str, typer.Option(help="Who holds the key (letters, digits, . _ -).")],
) -> None:
    """Create an API key for CLIENT; it is printed once and stored only as a hash."""
    key_id, key = operator(settings()).create_api_key(project, client)
    Console(stderr=True).print(
        f"API key {key_id} for client {client} of project {project}; "
        "it is shown once, keep it in the client's secret store:"
    )
    print(key)


@serving_keys_app.command("list")
@edge
def serving_keys_list(project: ProjectOpt) -> None:
    """List a project's API keys: id, client, creation time (never a key or its hash)."""
    table = Table("key id", "client", "created")
    for item in apikeys.list_keys(openbao.login(settings(), "operator"), project):
        table.add_row(item["key_id"], item["client"], item["created"])
    console.print(table)


@serving_keys_app.command("revoke")
@edge
def serving_keys_revoke(
    project: ProjectOpt,
    key_id: Annotated[str, typer.Argument(help="The key id, as `serving keys list` shows it.")],
) -> None:
    """Revoke an API key; the endpoint refuses it once its cached copy expires (30 s by
    default)."""
    operator(settings()).revoke_api_key(project, key_id)
    console.print(f"API key {key_id} revoked")


# -- monitor and retrain ---------------------------------------------------------------


def _retrain_line(result: Retrain) -> str:
    version = f" version {result.version}" if result.version else ""
    return f"retrain ({result.trigger}):{version} {result.outcome}: {result.reason}"


@monitor_app.command("run")
@edge
def monitor_run(
    project: ProjectOpt,
    retrain_on_drift: Annotated[
        bool, typer.Option("--retrain/--no-retrain", help="Retrain when the population drifted.")
    ] = True,
) -> None:
    """Analyse the champion's newest captured predictions now, as the worker does."""
    # Imported here: NannyML takes seconds to import, and most commands never need it.
    from monitoring import report
    from pipeline.monitor import watch

    with console.status("monitoring") as status:
        watched = watch(
            settings(), project, actor(), retrain_on_drift=retrain_on_drift, progress=status.update
        )
    checked = watched.checked
    if checked.analysis is None:
        console.print(f"nothing analysed: {checked.reason}")
        return
    table = Table("statistic", "newest chunk", "band", "state", title=checked.reason)
    for name, signal in checked.analysis.signals():
        state = "[red]ALERT[/]" if signal.alert else "ok"
        table.add_row(name, f"{signal.value:.4f}", report.band(signal), state)
    console.print(table)
    console.print(f"report: {checked.report} (`hipaa-mlops monitor report NAME -p {project}`)")
    if watched.retrained is not None:
        console.print(_retrain_line(watched.retrained))
    if watched.retrain_error is not None:
        raise ServerError(f"the retrain that drift started failed: {watched.retrain_error}")


@monitor_app.command("reports")
@edge
def monitor_reports(project: ProjectOpt) -> None:
    """List the monitoring reports in the project's lake, newest first."""
    names = lake.reports(objectstore.open_store(settings(), project))
    table = Table("report", title=f"monitoring reports of {project}")
    for name in names:
        table.add_row(name)
    console.print(table)


@monitor_app.command("report")
@edge
def monitor_report(
    project: ProjectOpt,
    name: Annotated[str, typer.Argument(help="A report name, as `monitor reports` lists it.")],
    out: Annotated[Path, typer.Option(help="Directory to write the HTML report into.")] = Path("."),
) -> None:
    """Fetch a monitoring report from the lake (decrypted) into an HTML file (mode 0600)."""
    page = lake.report(objectstore.open_store(settings(), project), name)
    out.mkdir(parents=True, exist_ok=True)
    write_private(out / name, page)
    console.print(f"report: {out / name}")


@monitor_app.command("outcomes")
@edge
def monitor_outcomes(
    project: ProjectOpt,
    path: Annotated[
        Path, typer.Argument(help="CSV or Parquet with exactly prediction_id and outcome.")
    ],
) -> None:
    """Report observed outcomes of earlier predictions, by the prediction ids the endpoint
    returned; monitoring then computes realised AUROC."""
    from pipeline.monitor import report_outcomes

    frame = lake.read_outcomes(path)
    name = report_outcomes(settings(), project, frame, actor())
    console.print(f"{len(frame):,} outcomes stored as {name}")


@app.command("retrain")
@edge
def retrain_command(
    project: ProjectOpt,
    trigger: Annotated[
        str, typer.Option(help="What started it: schedule (from cron), drift or manual.")
    ] = "manual",
) -> None:
    """Retrain on the newest de-identified dataset version and promote through the gate, or
    hold with the reasons; for cron, `--trigger schedule`."""
    from pipeline.retrain import TRIGGERS, retrain

    if trigger not in TRIGGERS:
        raise ConfigError(f"the trigger is one of {', '.join(TRIGGERS)}")
    with console.status("retraining") as status:
        result = retrain(settings(), project, trigger, actor(), status.update)
    console.print(_retrain_line(result))


class Cloud(StrEnum):
    AWS = "aws"


@app.command("promote")
@edge
def promote_command(
    project: ProjectOpt,
    to: Annotated[Cloud, typer.Option("--to", help="Where to: aws (terraform/envs).")],
    env: Annotated[
        str, typer.Option("--env", help="The environment: staging or production.")
    ] = "staging",
    version: Annotated[
        str | None,
        typer.Option(
            help="The version to serve (default: the champion); the gate must have approved it."
        ),
    ] = None,
    tfvars: Annotated[
        Path | None,
        typer.Option(
            help="The variables file to update (default: terraform/envs/"
            "projects.<env>.tfvars.json)."
        ),
    ] = None,
) -> None:
    """Write the Terraform variables that serve a version the gate approved in the
    project's AWS regions: the recorded app image, the model archive and its SHA-256, the
    contract. Audited; prints the commands that push the image and plan and apply."""
    from pipeline import cloud

    with console.status("packing the model"):
        done = cloud.promote(settings(), project, env, actor(), version, tfvars)
    console.print(
        f"version {done.version} of {project} is promoted to {to.value} {env} in "
        f"{', '.join(done.aws_regions)}\n"
        f"  variables: {done.tfvars}\n  model archive: {done.archive} "
        f"(sha256 {done.archive_sha256[:12]})\n  image: {done.image_tag}\nthen run:"
    )
    for line in done.commands():
        console.print(f"  {line}", highlight=False, soft_wrap=True)


@app.command("evidence")
@edge
def evidence_command(
    tests: Annotated[
        Path | None,
        typer.Option(
            help="The JUnit file of the last `make test` (default: <data dir>/test-results.xml)."
        ),
    ] = None,
) -> None:
    """Run every control check on the running stack and on terraform/, and write the
    report for an auditor (HTML) and for machines (JSON), mapped to 45 CFR 164.312;
    audited. Exits 1 when a control is red."""
    from pipeline import evidence

    cfg = settings()
    operator = openbao.login(cfg, "operator")
    with console.status("checking") as status:
        report = evidence.collect(
            cfg,
            operator,
            openbao.login(cfg, "auditor"),
            tests or cfg.data_dir / "test-results.xml",
            lambda step: status.update(f"checking: {step}"),
        )
    table = Table("check", "result", "what was found", "controls")
    colour = {evidence.PASS: "green", evidence.FAIL: "red", evidence.NA: "dim"}
    for check in report.checks:
        table.add_row(
            check.name,
            f"[{colour[check.status]}]{check.status}[/]",
            check.summary,
            ", ".join(check.controls),
        )
    console.print(table)
    json_path, html_path = evidence.write(cfg, operator, report, actor())
    console.print(f"report: {html_path} (and {json_path.name})")
    if report.red:
        raise GateRefused(f"{len(report.red)} red: {', '.join(c.name for c in report.red)}")


@app.command("demo")
@edge
def demo(
    keep: Annotated[bool, typer.Option(envvar="KEEP", help="Leave the servers running.")] = False,
) -> None:
    """Run the lifecycle end to end on the sandbox stack."""
    from pipeline.demo import run_demo

    run_demo(settings(), console, keep=keep)


if __name__ == "__main__":
    app()

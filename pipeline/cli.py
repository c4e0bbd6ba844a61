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
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import click
import typer
from rich.console import Console
from rich.table import Table

from model.train import Evaluation, TrainConfig
from monitoring import lake
from pipeline import projects
from pipeline.training import ModelSteward
from safeguards import apikeys, keys, logs, objectstore, openbao
from safeguards.audit import AuditLog
from safeguards.errors import ConfigError, GateRefused, SafeguardError, ServerError
from safeguards.files import write_private
from safeguards.settings import Settings, load_settings
from sandbox.steps import DataSteward, read_table
from sandbox.synth import COHORTS
from sandbox.versions import DatasetRepo
from services.compose import ComposeStack, stack_for

if TYPE_CHECKING:
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
    logs.configure(settings().log_level)


# -- stack -----------------------------------------------------------------------------


Profile = Annotated[
    str | None,
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
    profile = profile or cfg.profile
    with console.status(f"starting the {profile} stack ({cfg.runtime})"):
        states = stack_for(cfg).up(profile)
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


def audit_log(cfg: Settings, identity: str) -> AuditLog:
    return AuditLog.of(cfg, openbao.login(cfg, identity))


@audit_app.command("verify")
@edge
def audit_verify() -> None:
    """Verify every entry, the chain and every anchor, as the auditor identity."""
    result = audit_log(settings(), "auditor").verify()
    console.print(
        f"[green]audit chain verified[/]: {result.entries} entries signed by "
        f"{len(result.signers)} identities, {result.anchors} anchors, the last at entry "
        f"{result.head_seq}"
    )


# -- keys ------------------------------------------------------------------------------

Project = Annotated[str, typer.Argument(help="Project name: lowercase letters, digits, dashes.")]


def _operator_action(action: str, project: str, run: Callable[[], object]) -> object:
    cfg = settings()
    keys.validate_project(project)
    log = audit_log(cfg, "operator")
    try:
        result = run()
    except SafeguardError:
        log.append(actor(), action, f"project/{project}", outcome="failed")
        raise
    log.append(actor(), action, f"project/{project}")
    return result


@projects_app.command("create")
@edge
def projects_create(project: Project) -> None:
    """Create a project: its keys, policies, AppRoles and MLflow names; on the stack also
    its S3 identities and zone buckets with SSE-KMS. Refuses a name that exists, or whose
    resources exist without `projects create` having made them."""
    cfg = settings()
    op = openbao.login(cfg, "operator")
    stack = stack_for(cfg)
    _operator_action(
        "projects.create",
        project,
        lambda: projects.create_project(
            op, cfg, project, reload_lake=lambda: stack.reload("seaweedfs")
        ),
    )
    if project == cfg.serving_project:
        stack.project_created()
    console.print(f"project [bold]{project}[/] has key {keys.key_name(project)}")


@keys_app.command("show")
@edge
def keys_show(project: Project) -> None:
    """Show a project's key versions."""
    info = keys.describe(openbao.login(settings(), "operator"), project)
    for field, value in info.items():
        console.print(f"{field}: {value}")


@keys_app.command("rotate")
@edge
def keys_rotate(project: Project) -> None:
    """Add a key version: new objects use it, older ones still open."""
    op = openbao.login(settings(), "operator")
    version = _operator_action("keys.rotate", project, lambda: keys.rotate(op, project))
    console.print(f"project {project}: key version {version} is now current")


@keys_app.command("revoke-below")
@edge
def keys_revoke_below(
    project: Project,
    version: Annotated[int, typer.Argument(min=1, help="Oldest key version still allowed.")],
) -> None:
    """Refuse to open anything wrapped by key versions older than VERSION."""
    op = openbao.login(settings(), "operator")
    _operator_action("keys.revoke", project, lambda: keys.revoke_below(op, project, version))
    console.print(f"project {project}: key versions below {version} revoked")


@keys_app.command("shred")
@edge
def keys_shred(
    project: Project,
    confirm: Annotated[
        str | None, typer.Option(help="Type the project name again to confirm.")
    ] = None,
) -> None:
    """Destroy a project's key: all of its data becomes unreadable, for good."""
    if confirm is None:
        if not sys.stdin.isatty():
            console.print("[red]refused:[/] pass --confirm PROJECT to shred non-interactively")
            raise typer.Exit(2)
        confirm = typer.prompt(f"Type '{project}' to destroy its key and all of its data")
    if confirm != project:
        console.print("[red]refused:[/] the confirmation does not match the project name")
        raise typer.Exit(2)
    op = openbao.login(settings(), "operator")
    _operator_action("keys.shred", project, lambda: keys.shred(op, project))
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
    cohort: Annotated[str, typer.Option(help=f"One of: {', '.join(COHORTS)}.")] = "baseline",
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same rows.")] = 0,
) -> None:
    """Generate a privacy-gated synthetic PHI-shaped set and version it."""
    with console.status(f"synthesising {rows:,} patients ({cohort})"):
        meta = DataSteward(settings(), project).synth(name, rows, cohort, seed)
    gate = meta["privacy_gate"]
    console.print(
        f"dataset {name} @ {meta['revision'][:12]}: {meta['rows']:,} rows; privacy gate "
        f"passed (exact copies {gate['exact_copy_rate']:.2%}, "
        f"DCR ratio {gate['dcr_ratio']:.2f})"
    )


@data_app.command("ingest")
@edge
def data_ingest(
    project: ProjectOpt,
    name: Annotated[str, typer.Option(help="Name in the raw-phi zone.")],
    file: Annotated[Path | None, typer.Option(help="A raw table: .parquet or .csv.")] = None,
    synthetic: Annotated[
        str | None, typer.Option(help="Or: a synthetic dataset to ingest as if it were raw.")
    ] = None,
) -> None:
    """Admit a raw table (PHI) into the project's raw-phi zone after a schema check."""
    if (file is None) == (synthetic is None):
        raise ConfigError("give exactly one of --file and --synthetic")
    steward = DataSteward(settings(), project)
    with console.status("checking and storing the raw table"):
        table = read_table(file) if file else steward.repo.read(str(synthetic))
        steward.ingest(name, table)
    console.print(f"raw table {name} ({len(table):,} rows) stored in {project}-raw-phi")


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
    seed: Annotated[int, typer.Option(help="Seed of the split and the model.")] = 0,
    c: Annotated[float, typer.Option("--C", min=1e-6, help="Inverse regularisation.")] = 1.0,
) -> None:
    """Train on a de-identified dataset version, log the run with its lineage, register it."""
    steward = ModelSteward(settings(), project)
    with console.status("training") as status:
        trained = steward.train(
            dataset, revision, TrainConfig(seed=seed, C=c), actor=actor(), progress=status.update
        )
    console.print(
        _evaluation_table(
            f"{steward.registry.name} version {trained.registered.version} "
            f"(run {trained.registered.run_id[:12]})",
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
def model_promote(version: Version, project: ProjectOpt) -> None:
    """Run the promotion gate; move `champion` to VERSION only if every check passes."""
    with console.status("running the promotion gate"):
        promotion = ModelSteward(settings(), project).promote(version, approver=actor())
    table = Table("check", "result", "detail", title=f"promotion gate for version {version}")
    for check in promotion.decision.checks:
        table.add_row(
            check.name, "[green]pass[/]" if check.passed else "[red]FAIL[/]", check.reason
        )
    console.print(table)
    if not promotion.decision.approved:
        failed = ", ".join(c.name for c in promotion.decision.failed)
        raise GateRefused(f"version {version} not promoted: {failed} failed")
    console.print(f"version {version} is the champion (was {promotion.champion or 'none'})")


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


# -- serving ---------------------------------------------------------------------------


@serving_keys_app.command("create")
@edge
def serving_keys_create(
    project: ProjectOpt,
    client: Annotated[str, typer.Option(help="Who holds the key (letters, digits, . _ -).")],
) -> None:
    """Create an API key for CLIENT; it is printed once and stored only as a hash."""
    cfg = settings()
    op = openbao.login(cfg, "operator")
    key_id, key = apikeys.create(op, project, client)
    audit_log(cfg, "operator").append(
        actor(), "serving.keys.create", f"serving/{project}/{key_id}", client=client
    )
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
    cfg = settings()
    apikeys.revoke(openbao.login(cfg, "operator"), project, key_id)
    audit_log(cfg, "operator").append(actor(), "serving.keys.revoke", f"serving/{project}/{key_id}")
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

    frame = read_table(path)
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

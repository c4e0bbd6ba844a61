"""The `hipaa-mlops` command line.

Errors from the security core are printed as one line, with their message only: never a
traceback with local variables, which could hold PHI or secrets.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from safeguards import keys, logs, openbao
from safeguards.audit import AuditLog
from safeguards.errors import SafeguardError
from safeguards.settings import Settings, load_settings
from services.seaweedfs import launcher as seaweedfs
from services.supervisor import Supervisor

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
projects_app = typer.Typer(
    help="Projects: the unit of tenancy and isolation.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(projects_app, name="projects")

console = Console()


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
            Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
@edge
def main() -> None:
    logs.configure(settings().log_level)


# -- stack -----------------------------------------------------------------------------


Profile = Annotated[
    str | None,
    typer.Option(help="sandbox (OpenBao) or stack (every server); default HIPAA_MLOPS_PROFILE."),
]


@stack_app.command("up")
@edge
def stack_up(profile: Profile = None) -> None:
    """Start the profile's servers, wait until each is healthy over TLS."""
    cfg = settings()
    profile = profile or cfg.profile
    with console.status(f"starting the {profile} stack"):
        states = Supervisor(cfg).up(profile)
    _print_states(states)


@stack_app.command("down")
@edge
def stack_down() -> None:
    """Stop every server of the stack, also after a crashed `stack up`."""
    Supervisor(settings()).down()
    console.print("stack stopped")


@stack_app.command("status")
@edge
def stack_status() -> None:
    """Show each server's process and health."""
    _print_states(Supervisor(settings()).status())


def _print_states(states: list) -> None:  # type: ignore[type-arg]
    table = Table("service", "pid", "state", "health check")
    for s in states:
        colour = {"running": "green", "stopped": "dim"}.get(s.state, "red")
        table.add_row(s.name, str(s.pid or "-"), f"[{colour}]{s.state}[/]", s.url)
    console.print(table)


# -- audit -----------------------------------------------------------------------------


def audit_log(cfg: Settings, identity: str) -> AuditLog:
    return AuditLog(cfg.data_dir / "audit" / "audit.jsonl", openbao.login(cfg, identity))


@audit_app.command("verify")
@edge
def audit_verify() -> None:
    """Verify the whole chain and its anchor, as the auditor identity."""
    result = audit_log(settings(), "auditor").verify()
    console.print(
        f"[green]audit chain verified[/]: {result.entries} entries, "
        f"anchored head at entry {result.head_seq}"
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
    """Create a project: its key, policy and AppRole; on the stack also its S3 identity
    and zone buckets with default encryption SSE-KMS under its key."""
    cfg = settings()
    op = openbao.login(cfg, "operator")
    supervisor = Supervisor(cfg)

    def create() -> None:
        if cfg.profile == "stack":
            seaweedfs.provision(cfg, op, project, reload=lambda: supervisor.reload("seaweedfs"))
        else:
            keys.create_project(op, cfg, project)

    _operator_action("projects.create", project, create)
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

"""How the platform grows with teams: `projects create` and `projects delete` at 1, 10 and
50 projects, and what each project costs in OpenBao (policies, AppRoles, keys) and in the
servers' memory.

Peer, measured in the same run: the floor of a project in OpenBao, i.e. one transit key,
one policy and one AppRole with a secret id made by bare API calls, and removed by bare
calls. A project of ours is three identities, eight keys, its MLflow users, experiment,
model and contract; the ratio says what that costs against the floor.

    python -m bench.projects [--counts 1,10,50] [--deletes 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import hvac
from rich.progress import Progress

import contract as contracts
from bench import stack
from pipeline import projects
from safeguards import keys, openbao
from safeguards.settings import Settings
from services.supervisor import Supervisor


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def floor_create(operator: hvac.Client, name: str) -> None:
    operator.secrets.transit.create_key(name, key_type="aes256-gcm96")
    operator.sys.create_or_update_policy(
        name, f'path "transit/encrypt/{name}" {{capabilities=["update"]}}'
    )
    operator.auth.approle.create_or_update_approle(name, token_policies=[name])
    operator.auth.approle.generate_secret_id(name)


def floor_delete(operator: hvac.Client, name: str) -> None:
    operator.secrets.transit.update_key_configuration(name, deletion_allowed=True)
    operator.secrets.transit.delete_key(name)
    operator.sys.delete_policy(name)
    operator.auth.approle.delete_role(name)


def owned(operator: hvac.Client, project: str) -> dict[str, int]:
    """The OpenBao objects that carry `project`'s name: policies, AppRoles, transit keys."""
    identities = keys.project_identities(project)
    names = operator.secrets.transit.list_keys()["data"]["keys"]
    return {
        "policies": sum(1 for who in identities if operator.sys.read_policy(who)),
        "approles": sum(1 for who in identities if operator.auth.approle.read_role(who)),
        "keys": sum(1 for n in names if n.endswith(f"-{project}") and not n.startswith("floor-")),
    }


def rss_mib(settings: Settings, name: str) -> float:
    """Resident memory of server `name`'s process tree, MiB."""
    pid = Supervisor(settings).pid(name)
    return 0.0 if pid is None else stack.tree_rss_mib(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,50", help="project counts to measure at")
    parser.add_argument("--deletes", type=int, default=3, help="deletions timed per count")
    args = parser.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    text = contracts.example("diabetes")
    rows = [
        "| projects | create s (median) | floor create s | ratio | delete s (median) "
        "| floor delete s | ratio | OpenBao MiB | MLflow MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    with stack.running() as settings:
        operator = openbao.login(settings, "operator")
        supervisor = Supervisor(settings)
        made, first = 0, ""
        with Progress() as progress:
            task = progress.add_task("projects", total=counts[-1] + args.deletes * len(counts))
            for count in counts:
                creates, floors = [], []
                while made < count:
                    name = f"b{uuid.uuid4().hex[:10]}"
                    creates.append(
                        seconds(
                            lambda n=name: projects.create_project(
                                operator, settings, n, text, reload_lake=lambda: None
                            )
                        )
                    )
                    floors.append(seconds(lambda n=name: floor_create(operator, f"floor-{n}")))
                    first, made = first or name, made + 1
                    progress.advance(task)
                deletes, floor_deletes = [], []
                for _ in range(args.deletes):
                    name = f"d{uuid.uuid4().hex[:10]}"
                    projects.create_project(
                        operator, settings, name, text, reload_lake=lambda: None
                    )
                    floor_create(operator, f"floor-{name}")
                    deletes.append(
                        seconds(
                            lambda n=name: projects.delete(
                                operator, settings, n, supervisor, now=True
                            )
                        )
                    )
                    floor_deletes.append(
                        seconds(lambda n=name: floor_delete(operator, f"floor-{n}"))
                    )
                    progress.advance(task)
                create, floor = statistics.median(creates), statistics.median(floors)
                delete, floor_del = statistics.median(deletes), statistics.median(floor_deletes)
                rows.append(
                    f"| {count} | {create:.2f} | {floor:.3f} | {create / floor:.0f}x "
                    f"| {delete:.2f} | {floor_del:.3f} | {delete / floor_del:.0f}x "
                    f"| {rss_mib(settings, 'openbao'):.0f} | {rss_mib(settings, 'mlflow'):.0f} |"
                )
        per = owned(operator, first)
    print("\n".join(rows))
    print(
        f"\nOne project in OpenBao: {per['policies']} policies, {per['approles']} AppRoles, "
        f"{per['keys']} transit keys (the floor: 1, 1, 1); and its records in KV."
    )


if __name__ == "__main__":
    main()

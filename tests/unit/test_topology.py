from __future__ import annotations

from safeguards.policies import policy
from services.topology import SERVICES, services_for


def test_services_have_unique_names_and_ports() -> None:
    assert len({s.name for s in SERVICES}) == len(SERVICES)
    assert len({s.port_offset for s in SERVICES}) == len(SERVICES)


def test_sandbox_is_a_subset_of_stack() -> None:
    names = {s.name for s in services_for("stack")}
    assert {s.name for s in services_for("sandbox")} <= names
    assert services_for("sandbox")[0].name == "openbao"


def test_project_policy_is_scoped_to_its_project() -> None:
    text = policy("project", project="alpha")
    assert "{project}" not in text
    assert "transit/decrypt/proj-alpha" in text
    assert "proj-beta" not in text and "*" not in text.replace(
        "secret/data/projects/alpha/*", ""
    ).replace("secret/data/audit/*", "")


def test_every_port_is_distinct_across_servers() -> None:
    from safeguards.settings import PORT_OFFSETS

    assert len(set(PORT_OFFSETS.values())) == len(PORT_OFFSETS)
    assert {s.name for s in SERVICES} == set(PORT_OFFSETS)

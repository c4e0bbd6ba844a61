from __future__ import annotations

import re

from safeguards.policies import policy
from services.topology import SERVICES, services_for


def test_services_have_unique_names() -> None:
    assert len({s.name for s in SERVICES}) == len(SERVICES)


def test_sandbox_is_a_subset_of_stack() -> None:
    names = {s.name for s in services_for("stack")}
    assert {s.name for s in services_for("sandbox")} <= names
    assert services_for("sandbox")[0].name == "openbao"


# The only wildcards a project's policies may hold: its own records, and the audit log's
# verification and anchors (which every appender shares, and which verify checks).
_SHARED_WILDCARDS = ("transit/verify/audit-*", "secret/data/audit/*", "secret/metadata/audit/*")


def test_project_policies_are_scoped_to_their_project_and_its_regions() -> None:
    for template in ("project", "ingest", "serving"):
        text = policy(template, project="alpha", regions=["eu-central"])
        assert "{project}" not in text and "{region}" not in text
        assert "beta" not in text
        keys = re.findall(r"transit/[a-z/]+/([a-z0-9.-]+)", text)
        assert keys and all(k.startswith(("eu-central.", "audit-")) for k in keys), template
        for allowed in (*_SHARED_WILDCARDS, "/alpha/*", "/alpha/api-keys/*"):
            text = text.replace(allowed, "")
        assert "*" not in text.replace("# ", ""), template


def test_every_port_is_distinct_across_servers() -> None:
    from safeguards.settings import PORT_OFFSETS, SERVING_PORTS, Settings

    assert len(set(PORT_OFFSETS.values())) == len(PORT_OFFSETS)
    assert {s.name for s in SERVICES if not s.per_project} == set(PORT_OFFSETS)
    # Endpoints take the ports above every server's (SeaweedFS's internal ones included).
    assert max(PORT_OFFSETS.values()) + 9 < SERVING_PORTS
    assert Settings(serving_slot=3).port("serving") == Settings().port_base + SERVING_PORTS + 3

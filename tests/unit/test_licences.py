"""No installed dependency is under the AGPL, the BUSL or another licence that is not
open source: read from each distribution's own metadata, in the environment the tests run
in (installed from `requirements.lock`)."""

from __future__ import annotations

import re
from importlib.metadata import Distribution, distributions

NOT_OPEN = re.compile(
    r"AGPL|Affero|BUSL|Business Source|Proprietary|SSPL|Server Side Public|Elastic License"
    r"|Commons Clause|Non-?Commercial",
    re.IGNORECASE,
)


def _declared(dist: Distribution) -> str:
    """The licence a distribution declares: its SPDX expression, else its License field,
    else its licence classifiers (a stated licence wins over a stray classifier)."""
    meta = dist.metadata
    for field in ("License-Expression", "License"):
        value = (meta.get(field) or "").strip()
        if value and value.upper() != "UNKNOWN" and len(value) < 200:
            return value
    return " | ".join(c for c in meta.get_all("Classifier") or [] if c.startswith("License ::"))


def test_no_installed_dependency_is_under_a_licence_that_is_not_open_source() -> None:
    found = {dist.metadata["Name"]: _declared(dist) for dist in distributions()}
    assert len(found) > 100  # the whole environment was read
    refused = {name: licence for name, licence in found.items() if NOT_OPEN.search(licence)}
    assert refused == {}

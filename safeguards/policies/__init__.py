"""Least-privilege OpenBao policies, one HCL file per role."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files


def policy(name: str, regions: Sequence[str] = (), **params: str) -> str:
    """The HCL text of policy `name`, with ``{param}`` placeholders filled in, and each line
    that names ``{region}`` written once for each of `regions`."""
    text = files(__package__).joinpath(f"{name}.hcl").read_text()
    for key, value in params.items():
        text = text.replace("{" + key + "}", value)
    lines = []
    for line in text.splitlines():
        if "{region}" in line:
            lines += [line.replace("{region}", region) for region in regions]
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"

"""Least-privilege OpenBao policies, one HCL file per role."""

from __future__ import annotations

from importlib.resources import files


def policy(name: str, **params: str) -> str:
    """The HCL text of policy `name`, with ``{param}`` placeholders filled in."""
    text = files(__package__).joinpath(f"{name}.hcl").read_text()
    for key, value in params.items():
        text = text.replace("{" + key + "}", value)
    return text

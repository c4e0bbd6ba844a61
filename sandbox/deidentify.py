"""Safe Harbor de-identification (45 CFR 164.514(b)(2)) of any contract's table, with an
evidence report.

What happens to a column follows from its role in the project's contract: identifiers
are removed (free text included), except the one the contract pseudonymises, which
becomes a keyed pseudonym (HMAC from OpenBao transit) so records stay linkable across
batches; every date quasi-identifier is reduced to its year; a ZIP code keeps its first
three digits, or 000 where that area has 20,000 people or fewer; ages over 89 become 90
with a flag. Features, the site and the label are kept. A residual scan of every value
in the output must come back empty, or nothing is released. The evidence report says,
per identifier category, which columns it covers, what was done and to how many values.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from contract import (
    AGE_CAP,
    CATEGORY_TEXT,
    KIND_CATEGORY,
    PSEUDONYM,
    Category,
    Column,
    Contract,
    Kind,
    Role,
    Type,
    conform,
)
from safeguards import phi
from safeguards.errors import GateRefused

_ZIP5 = r"\b\d{5}(?:-\d{4})?\b"
# Three-digit ZIP areas with 20,000 or fewer people (HHS Safe Harbor guidance, 2000 census).
RESTRICTED_ZIP3 = frozenset(
    {"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831",
     "878", "879", "884", "890", "893"}
)  # fmt: skip


def action(column: Column) -> str:
    """What Safe Harbor does to `column`, as the evidence report says it."""
    if column.pseudonymize:
        return "replaced by a keyed pseudonym (HMAC in OpenBao)"
    if column.role == Role.IDENTIFIER:
        return "free text dropped" if column.type == Type.TEXT else "removed"
    if column.kind == Kind.ZIP:
        return "truncated to 3 digits; restricted 3-digit areas replaced by 000"
    if column.kind == Kind.DATE:
        return "reduced to its year"
    return f"ages over 89 set to {AGE_CAP} (flagged in {column.derived_name})"


def category(column: Column) -> Category | None:
    if column.role == Role.IDENTIFIER:
        return column.category
    return KIND_CATEGORY[column.kind] if column.kind is not None else None


def deidentify(
    raw: pd.DataFrame,
    contract: Contract,
    pseudonymize: Callable[[list[str]], dict[str, str]],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The de-identified table and its evidence report; GateRefused if anything remains."""
    table, _ = conform(raw, contract.columns, "the raw table")
    out: dict[str, Any] = {}
    counts = {"rows": len(table)}

    def count(what: str, n: int) -> None:
        counts[what] = counts.get(what, 0) + int(n)

    for column in contract.columns:
        values = table[column.name]
        present = values.notna()
        if column.pseudonymize:
            text = values[present].astype(str)
            mapping = pseudonymize(text.unique().tolist())
            out[PSEUDONYM] = values.map(mapping, na_action="ignore").astype("str")
            count("pseudonyms", len(mapping))
        elif column.role == Role.IDENTIFIER:
            count("free_text_dropped" if column.type == Type.TEXT else "identifier_values_removed",
                  present.sum())  # fmt: skip
        elif column.kind == Kind.ZIP:
            zip3 = values.str.slice(0, 3)
            restricted = zip3.isin(RESTRICTED_ZIP3)
            out[str(column.derived_name)] = zip3.where(~restricted, "000")
            count("zip3_restricted_set_to_000", restricted.sum())
        elif column.kind == Kind.DATE:
            years = values.dt.year.astype("Int64")
            out[str(column.derived_name)] = years if column.missing else years.astype("int64")
            count("dates_reduced_to_year", present.sum())
    for column in contract.columns:
        if column.kind == Kind.AGE:
            ages = table[column.name]
            over = (ages > AGE_CAP - 1).fillna(False).astype(bool)
            out[str(column.derived_name)] = over
            table[column.name] = ages.clip(upper=AGE_CAP)
            count("ages_over_89_set_to_90", over.sum())
    for name in contract.deidentified_types:
        if name not in out:
            out[name] = table[name]
    frame = pd.DataFrame(out)[list(contract.deidentified_types)]
    residual = residual_scan(frame, contract)
    evidence = {
        "standard": "HIPAA Safe Harbor, 45 CFR 164.514(b)(2)",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "contract": {
            "name": contract.name,
            "version": contract.version,
            "fingerprint": contract.fingerprint,
        },
        "rows_in": len(table),
        "rows_out": len(frame),
        "columns_out": list(frame.columns),
        "categories": categories(contract),
        "counts": counts,
        "residual_scan": residual,
    }
    if any(residual.values()):
        found = ", ".join(k for k, v in residual.items() if v)
        raise GateRefused(f"de-identification: residual identifiers found ({found})")
    return frame, evidence


def categories(contract: Contract) -> list[dict[str, str]]:
    """Each of the 18 categories with the columns of the contract it covers and what is
    done to them; a category the contract does not collect says so."""
    rows = []
    for cat, label in CATEGORY_TEXT.items():
        covered = [c for c in contract.columns if category(c) == cat]
        rows.append(
            {
                "category": label,
                "columns": ", ".join(c.name for c in covered) or "-",
                "action": "; ".join(f"{c.name}: {action(c)}" for c in covered) or "not collected",
            }
        )
    return rows


def residual_scan(frame: pd.DataFrame, contract: Contract) -> dict[str, int]:
    """How many values in `frame` still look like an identifier, by kind."""
    found = {kind: 0 for kind in [*phi.PATTERNS, "zip5", "age_over_90", "identifier_column"]}
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_string_dtype(series) or series.dtype == object:
            text = series.dropna().astype(str)
            for kind, pattern in phi.PATTERNS.items():
                found[kind] += int(text.str.contains(pattern, regex=True).sum())
            found["zip5"] += int(text.str.contains(_ZIP5, regex=True).sum())
        elif pd.api.types.is_datetime64_any_dtype(series):
            found["date"] += int(series.notna().sum())
    raw = {c.name for c in contract.columns if c.role in (Role.IDENTIFIER, Role.QUASI_IDENTIFIER)}
    found["identifier_column"] = sum(
        c in raw and contract.column(c).kind != Kind.AGE for c in frame.columns
    )
    ages = [c.name for c in contract.columns if c.kind == Kind.AGE and c.name in frame]
    found["age_over_90"] = int(sum(np.sum(frame[a].fillna(0).to_numpy() > AGE_CAP) for a in ages))
    return found


def evidence_html(evidence: dict[str, Any]) -> str:
    """The evidence report as a self-contained HTML page."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(c['category'])}</td><td>{esc(c['columns'])}</td>"
        f"<td>{esc(c['action'])}</td></tr>"
        for c in evidence["categories"]
    )
    counts = "".join(
        f"<tr><td>{esc(k)}</td><td>{v:,}</td></tr>" for k, v in evidence["counts"].items()
    )
    scan = "".join(
        f"<tr><td>{esc(k)}</td><td class={'ok' if v == 0 else 'bad'}>{v}</td></tr>"
        for k, v in evidence["residual_scan"].items()
    )
    ident = esc(str(evidence.get("dataset", {}).get("content_hash", "not versioned yet")))
    contract = evidence["contract"]
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>De-identification evidence</title><style>
body{{font-family:sans-serif;margin:2em;max-width:70em}} td,th{{border:1px solid #ccc;
padding:.3em .6em;text-align:left}} table{{border-collapse:collapse;margin-bottom:1.5em}}
.ok{{background:#e6f4ea}} .bad{{background:#fce8e6}}</style></head><body>
<h1>De-identification evidence</h1>
<p>{esc(evidence["standard"])}. Created {esc(evidence["created"])}.
Rows in: {evidence["rows_in"]:,}; rows out: {evidence["rows_out"]:,}. Dataset: {ident}.
Contract: {esc(contract["name"])} version {contract["version"]}
({esc(contract["fingerprint"])}).</p>
<h2>Identifier categories</h2><table><tr><th>category</th><th>columns</th><th>action</th></tr>
{rows}</table>
<h2>Values handled</h2><table><tr><th>what</th><th>count</th></tr>{counts}</table>
<h2>Residual scan of every output value (all must be 0)</h2>
<table><tr><th>pattern</th><th>matches</th></tr>{scan}</table>
<p>Output columns: {esc(", ".join(evidence["columns_out"]))}</p></body></html>
"""

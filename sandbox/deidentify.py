"""Safe Harbor de-identification (45 CFR 164.514(b)(2)) with an evidence report.

Direct identifiers are removed; dates are reduced to their year; ages over 89 become 90
with a flag; ZIP codes keep their first three digits, or 000 where that area has 20,000
people or fewer; free text is dropped. Records stay linkable across batches through a
keyed pseudonym of the MRN (HMAC from OpenBao transit), never through an identifier.
A residual scan of every value in the output must come back empty, or nothing is
released. The evidence report says, per identifier category, what was done to how many
values.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from typing import Any

import pandas as pd

from safeguards import phi
from safeguards.errors import ConfigError, GateRefused
from sandbox.schema import DEIDENTIFIED_COLUMNS, FEATURES, IDENTIFIERS, LABEL, RAW_COLUMNS, check
from sandbox.synth import RESTRICTED_ZIP3

# The 18 Safe Harbor categories, and what this pipeline does about each.
CATEGORIES = {
    "names": ("name", "removed"),
    "geographic subdivisions smaller than a state": (
        "street_address, city, zip",
        "street and city removed; ZIP truncated to 3 digits, "
        "restricted 3-digit areas replaced by 000",
    ),
    "dates (except year) directly related to an individual": (
        "date_of_birth, admission_date, discharge_date",
        "birth date removed; admission and discharge reduced to year; ages over 89 set to 90",
    ),
    "telephone numbers": ("phone", "removed"),
    "fax numbers": ("-", "not collected"),
    "electronic mail addresses": ("email", "removed"),
    "social security numbers": ("ssn", "removed"),
    "medical record numbers": ("mrn", "replaced by a keyed pseudonym (HMAC in OpenBao)"),
    "health plan beneficiary numbers": ("-", "not collected"),
    "account numbers": ("-", "not collected"),
    "certificate/license numbers": ("-", "not collected"),
    "vehicle identifiers and serial numbers": ("-", "not collected"),
    "device identifiers and serial numbers": ("-", "not collected"),
    "web URLs": ("-", "not collected"),
    "IP addresses": ("-", "not collected"),
    "biometric identifiers": ("-", "not collected"),
    "full-face photographs and comparable images": ("-", "not collected"),
    "any other unique identifying number, characteristic or code": ("note", "free text dropped"),
}
_ZIP5 = r"\b\d{5}(?:-\d{4})?\b"


def deidentify(
    raw: pd.DataFrame, pseudonymize: Callable[[list[str]], dict[str, str]]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The de-identified table and its evidence report; GateRefused if anything remains."""
    check(raw, RAW_COLUMNS, "raw")
    try:
        admission = pd.to_datetime(raw["admission_date"], format="ISO8601")
        discharge = pd.to_datetime(raw["discharge_date"], format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ConfigError("admission_date and discharge_date must be ISO 8601 dates") from exc
    for column, dates in (("admission_date", admission), ("discharge_date", discharge)):
        if dates.isna().any():
            rows = [int(i) + 1 for i in dates.index[dates.isna()][:3]]
            raise ConfigError(
                f"{column} is missing in {int(dates.isna().sum())} row(s), first at row(s) "
                f"{', '.join(map(str, rows))}; every row needs one"
            )
    mrn = raw["mrn"].astype(str)
    mapping = pseudonymize(mrn.tolist())
    age = raw["age"].astype("int64")
    zip3 = raw["zip"].astype(str).str.extract(r"^(\d{3})\d{2}", expand=False).fillna("000")
    restricted = zip3.isin(RESTRICTED_ZIP3)
    out = pd.DataFrame(
        {
            "pseudonym": mrn.map(mapping),
            "age_90_plus": age >= 90,
            "zip3": zip3.where(~restricted, "000"),
            "admission_year": admission.dt.year.astype("int64"),
            "discharge_year": discharge.dt.year.astype("int64"),
        }
    )
    for column in FEATURES:
        out[column] = raw[column].to_numpy()
    out["age"] = age.clip(upper=90).to_numpy()
    out[LABEL] = raw[LABEL].to_numpy()
    out = out[DEIDENTIFIED_COLUMNS]
    residual = residual_scan(out)
    counts = {
        "rows": len(raw),
        "identifier_values_removed": int(raw[list(IDENTIFIERS)].notna().sum().sum()),
        "pseudonyms": int(out["pseudonym"].nunique()),
        "ages_over_89_set_to_90": int((age > 89).sum()),
        "zip3_restricted_set_to_000": int(restricted.sum()),
        "dates_reduced_to_year": int(admission.notna().sum() + discharge.notna().sum()),
        "birth_dates_removed": int(raw["date_of_birth"].notna().sum()),
        "free_text_dropped": int(raw["note"].notna().sum()),
    }
    evidence = {
        "standard": "HIPAA Safe Harbor, 45 CFR 164.514(b)(2)",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows_in": len(raw),
        "rows_out": len(out),
        "columns_out": list(out.columns),
        "categories": [
            {"category": name, "columns": columns, "action": action}
            for name, (columns, action) in CATEGORIES.items()
        ],
        "counts": counts,
        "residual_scan": residual,
    }
    if any(residual.values()):
        found = ", ".join(k for k, v in residual.items() if v)
        raise GateRefused(f"de-identification: residual identifiers found ({found})")
    return out, evidence


def residual_scan(frame: pd.DataFrame) -> dict[str, int]:
    """How many values in `frame` still look like an identifier, by kind."""
    found = {kind: 0 for kind in [*phi.PATTERNS, "zip5", "age_over_90", "identifier_column"]}
    for column in frame.columns:
        series = frame[column]
        if series.dtype.kind in "OUS" or pd.api.types.is_string_dtype(series):
            text = series.astype(str)
            for kind, pattern in phi.PATTERNS.items():
                found[kind] += int(text.str.contains(pattern, regex=True).sum())
            found["zip5"] += int(text.str.contains(_ZIP5, regex=True).sum())
        elif pd.api.types.is_datetime64_any_dtype(series):
            found["date"] += int(series.notna().sum())
    found["identifier_column"] = sum(c in IDENTIFIERS for c in frame.columns)
    if "age" in frame:
        found["age_over_90"] = int((frame["age"] > 90).sum())
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
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>De-identification evidence</title><style>
body{{font-family:sans-serif;margin:2em;max-width:70em}} td,th{{border:1px solid #ccc;
padding:.3em .6em;text-align:left}} table{{border-collapse:collapse;margin-bottom:1.5em}}
.ok{{background:#e6f4ea}} .bad{{background:#fce8e6}}</style></head><body>
<h1>De-identification evidence</h1>
<p>{esc(evidence["standard"])}. Created {esc(evidence["created"])}.
Rows in: {evidence["rows_in"]:,}; rows out: {evidence["rows_out"]:,}. Dataset: {ident}.</p>
<h2>Identifier categories</h2><table><tr><th>category</th><th>columns</th><th>action</th></tr>
{rows}</table>
<h2>Values handled</h2><table><tr><th>what</th><th>count</th></tr>{counts}</table>
<h2>Residual scan of every output value (all must be 0)</h2>
<table><tr><th>pattern</th><th>matches</th></tr>{scan}</table>
<p>Output columns: {esc(", ".join(evidence["columns_out"]))}</p></body></html>
"""

"""Identifier patterns, and scrubbing them out of anything that leaves a process.

Used by the logger, the audit log and error rendering. It errs on the side of removing
too much: a date in a log message might be a date of birth, so every date goes.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

# Field names whose values are identifiers whatever they look like (names, addresses...).
IDENTIFIER_FIELDS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "full_name",
        "patient_name",
        "given_name",
        "family_name",
        "ssn",
        "mrn",
        "medical_record_number",
        "address",
        "street",
        "street_address",
        "city",
        "zip",
        "zip_code",
        "postal_code",
        "phone",
        "phone_number",
        "fax",
        "email",
        "e_mail",
        "dob",
        "date_of_birth",
        "birth_date",
        "birthdate",
        "admission_date",
        "discharge_date",
        "note",
        "notes",
        "free_text",
        "health_plan_id",
        "account_number",
        "license_number",
        "device_id",
        "ip_address",
        "url",
        "photo",
        "biometric",
    }
)

PATTERNS: dict[str, re.Pattern[str]] = {
    "ssn": re.compile(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b"),
    "mrn": re.compile(r"\bMRN[\s:#-]*[A-Z0-9-]{4,}\b", re.IGNORECASE),
    "email": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    "phone": re.compile(r"(?<![\w-])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b"),
    "date": re.compile(r"\b(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/]\d{1,2}[-/]\d{2,4})\b"),
}


def find_identifiers(text: str) -> list[str]:
    """Names of the identifier patterns found in `text` (not the values)."""
    return [kind for kind, pattern in PATTERNS.items() if pattern.search(text)]


def scrub(text: str, keep: tuple[str, ...] = ()) -> str:
    """`text` with every identifier pattern but those named in `keep` redacted."""
    for kind, pattern in PATTERNS.items():
        if kind not in keep:
            text = pattern.sub(REDACTED, text)
    return text


def scrub_value(value: Any, field: str | None = None) -> Any:
    """Scrub strings nested anywhere in `value`; identifier fields are dropped whole."""
    if field is not None and field.lower() in IDENTIFIER_FIELDS:
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [scrub_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))

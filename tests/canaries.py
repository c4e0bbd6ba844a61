"""Canary identifiers: fake, but shaped like PHI, so any leak of them is visible."""

from __future__ import annotations

# Values that the identifier patterns must catch wherever they appear.
CANARIES = {
    "ssn": "078-05-1120",
    "mrn": "MRN: 8675309Q",
    "phone": "(617) 555-0142",
    "email": "canary.patient@example.org",
    "dob": "1961-07-04",
}
# A name has no pattern: it is caught only in fields named like identifiers.
NAME = "Zebulon Canaryfield"


def assert_clean(text: str) -> None:
    assert text.strip(), "nothing was produced, so nothing was checked"
    for kind, value in {**CANARIES, "name": NAME}.items():
        assert value not in text, f"{kind} canary leaked"
    assert "8675309Q" not in text

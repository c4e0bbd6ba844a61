"""Every Python log path goes through the PHI-safe formatter."""

from __future__ import annotations

import io
import json
import logging
import warnings

from tests.canaries import CANARIES, NAME, assert_clean


def test_every_python_log_path_is_scrubbed(captured: io.StringIO) -> None:
    log = logging.getLogger("hipaa_mlops.test")
    ssn, mrn, phone, email, dob = CANARIES.values()
    log.info(f"patient ssn {ssn} mrn {mrn} phone {phone} email {email} dob {dob}")
    log.warning("args: %s %s %s %s %s", ssn, mrn, phone, email, dob)
    log.info(
        "extra fields",
        extra={
            "patient_name": NAME,
            "note": f"{NAME} born {dob}",
            "record": {"email": email, "contact": [phone]},
        },
    )
    try:
        raise ValueError(f"lookup failed for {ssn} / {email}")
    except ValueError:
        log.exception("exception with identifiers in its message")
    logging.getLogger("urllib3.connectionpool").debug("GET /patients?mrn=%s", mrn)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated call with {email}", UserWarning, stacklevel=1)
    log.info("stack", stack_info=True, extra={"dob": dob})
    output = captured.getvalue()
    assert_clean(output)
    assert len(output.splitlines()) == 7


def test_lines_are_json_with_the_safe_fields_kept(captured: io.StringIO) -> None:
    logging.getLogger("hipaa_mlops.test").info("trained model %s", "v3", extra={"auroc": 0.83})
    line = json.loads(captured.getvalue())
    assert line["msg"] == "trained model v3"
    assert line["auroc"] == 0.83
    assert line["level"] == "INFO" and line["logger"] == "hipaa_mlops.test"
    assert line["ts"].startswith("20")

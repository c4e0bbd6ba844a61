"""Every Python log path goes through the PHI-safe formatter."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import threading
import warnings

from apscheduler.schedulers.background import BackgroundScheduler

from safeguards import logs, phi
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


def test_the_schedulers_next_run_time_is_kept_and_a_date_elsewhere_is_not(
    captured: io.StringIO,
) -> None:
    ran = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(ran.set, "interval", hours=1, next_run_time=dt.datetime.now(dt.UTC))
    scheduler.start()
    try:
        assert ran.wait(10), "the job did not run"
    finally:
        scheduler.shutdown(wait=True)
    dob = CANARIES["dob"]
    logging.getLogger("hipaa_mlops.test").info(f"born {dob}")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    running = next(line["msg"] for line in lines if line["msg"].startswith("Running job"))
    # The real scheduler's own line: its next run, an hour from now, is readable.
    assert re.search(r"next run at: \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", running), running
    assert phi.REDACTED not in running
    assert lines[-1]["msg"] == f"born {phi.REDACTED}"


def test_a_terminal_gets_one_readable_scrubbed_line_and_a_pipe_gets_json() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    log = logging.getLogger("hipaa_mlops.test")
    for stream, expect_json in ((Terminal(), False), (io.StringIO(), True)):
        handler = logs.configure("INFO", stream)
        try:
            log.info("trained %s", "v3", extra={"auroc": 0.83, "note": CANARIES["ssn"]})
        finally:
            logging.getLogger().removeHandler(handler)
        line = stream.getvalue().rstrip("\n")
        assert "\n" not in line
        assert_clean(line)
        if expect_json:
            assert json.loads(line)["msg"] == "trained v3"
        else:
            assert re.fullmatch(
                rf"\d\d:\d\d:\d\d INFO    hipaa_mlops.test: trained v3  auroc=0.83 "
                rf'note="{re.escape(phi.REDACTED)}"',
                line,
            ), line


def test_the_setting_overrides_the_terminal() -> None:
    stream = io.StringIO()
    handler = logs.configure("INFO", stream, fmt="text")
    try:
        logging.getLogger("hipaa_mlops.test").info("served")
    finally:
        logging.getLogger().removeHandler(handler)
    assert stream.getvalue().split(" ", 1)[1] == "INFO    hipaa_mlops.test: served\n"

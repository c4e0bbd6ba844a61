"""Structured logs with identifiers scrubbed out of every line.

`configure` installs one handler on the root logger, so records from every library pass
through it. Scrubbing happens in the formatter, after the message is rendered with its
arguments and after an exception's traceback is formatted, so neither can carry an
identifier past it. Extra fields named like identifiers are dropped whole.

Lines are JSON where a machine reads them (a server's log file, a pipe) and one readable
line of text in a terminal; the `log_format` setting chooses either. The scheduler's
loggers keep their dates: they name when a job runs next, never a patient's date.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from safeguards import phi

# uvicorn's `color_message` repeats the message with terminal colour codes.
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}


# Loggers whose dates are the times of scheduled jobs.
_SCHEDULER = "apscheduler"


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, Any]:
    """The record's fields, every one scrubbed."""
    keep = ("date",) if record.name.split(".")[0] == _SCHEDULER else ()
    line: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "msg": phi.scrub(record.getMessage(), keep),
    }
    extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    line.update(phi.scrub_value(extras))
    if record.exc_info:
        line["exc"] = phi.scrub(formatter.formatException(record.exc_info))
    if record.stack_info:
        line["stack"] = phi.scrub(formatter.formatStack(record.stack_info))
    return line


class PhiSafeJsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(self, record), default=str, ensure_ascii=False)


class PhiSafeTextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: message key=value ...``, then any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = _fields(self, record)
        head = f"{line.pop('ts')[11:19]} {line.pop('level'):<7} {line.pop('logger')}: "
        tail = [line.pop(k) for k in ("exc", "stack") if k in line]
        extras = " ".join(
            f"{k}={json.dumps(v, default=str, ensure_ascii=False)}"
            for k, v in line.items()
            if k != "msg"
        )
        return "\n".join([head + line["msg"] + (f"  {extras}" if extras else ""), *tail])


def configure(
    level: str = "INFO", stream: TextIO | None = None, fmt: str = "auto"
) -> logging.Handler:
    """Route every logger and Python warning through one PHI-safe handler: JSON, or text
    (`fmt` ``text``, or ``auto`` on a terminal)."""
    stream = stream or sys.stderr
    text = fmt == "text" or (fmt == "auto" and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PhiSafeTextFormatter() if text else PhiSafeJsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # MLflow gives its loggers their own plain-text handler: send them through ours instead.
    adopt("mlflow")
    # Off then on: captureWarnings(True) is a no-op when an earlier call is still recorded,
    # even if something (a test runner) has since replaced warnings.showwarning.
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    return handler


def adopt(*names: str) -> None:
    """Send loggers that a server configured with their own plain-text handlers (uvicorn,
    BentoML) through the PHI-safe handler instead."""
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True

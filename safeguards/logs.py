"""Structured JSON logs with identifiers scrubbed out of every line.

`configure` installs one handler on the root logger, so records from every library pass
through it. Scrubbing happens in the formatter, after the message is rendered with its
arguments and after an exception's traceback is formatted, so neither can carry an
identifier past it. Extra fields named like identifiers are dropped whole.
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


class PhiSafeJsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": phi.scrub(record.getMessage()),
        }
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        line.update(phi.scrub_value(extras))
        if record.exc_info:
            line["exc"] = phi.scrub(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = phi.scrub(self.formatStack(record.stack_info))
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Route every logger and Python warning through one PHI-safe JSON handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(PhiSafeJsonFormatter())
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

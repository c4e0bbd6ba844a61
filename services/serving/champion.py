"""The champion model in memory, swapped without a failed request when the alias moves.

A background thread asks the registry for the `champion` alias every few seconds. When it
names another version, that version is loaded completely and scored once on a valid
record before anything changes; then one attribute is rebound. A request reads that
attribute once and keeps the (version, model) pair it got for its whole life, so it is
answered entirely by the old model or entirely by the new one, and says which. A version
that fails to load or to score is never served; the current one stays.

The registry is reached as the project's read-only serving user over TLS. Failures
(OpenBao or MLflow down, the project not provisioned yet, no champion yet) leave the
endpoint serving what it has, or not ready, and are retried at the next poll.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from safeguards.errors import NotFound, SafeguardError
from safeguards.registry import ProjectRegistry, Scorer, score_columns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    version: str
    model: Scorer

    def predict(self, columns: Mapping[str, np.ndarray]) -> list[float]:
        """The probability of the contract's label for each row, in order: an ONNX model
        takes the columns as they are, a pipeline as a frame."""
        return [float(p) for p in score_columns(self.model, columns)]


class Champion:
    """Holds the served model; `refresh` checks the alias once, `start` keeps checking."""

    def __init__(
        self,
        connect: Callable[[], ProjectRegistry],
        features: list[str],
        probe: Mapping[str, np.ndarray],
        poll_seconds: float,
        on_swap: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.connect = connect
        self.features = features
        self.probe = probe
        self.poll_seconds = poll_seconds
        self.on_swap = on_swap
        self.current: Served | None = None
        self._registry: ProjectRegistry | None = None
        self._pending: str | None = None
        self._refused: str | None = None
        self._problem: str | None = None
        # Whether the registry said there is no champion at all (not a load failure).
        self.none_yet = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-poller", daemon=True)

    def refresh(self) -> None:
        """Serve the version the alias names, if it is not served already."""
        try:
            candidate = self._candidate()
        except SafeguardError as exc:
            if not isinstance(exc, NotFound):
                self._registry = None
            self._report(str(exc))
            return
        except Exception as exc:
            # Model code can fail any way it likes; the served model must survive it.
            self._refused = self._pending
            self._report(f"version {self._pending} failed to load or score ({type(exc).__name__})")
            return
        self._report(None)
        if candidate is None:
            return
        before = self.current.version if self.current else None
        self.current = candidate
        # The new model's objects join the frozen heap, so full collections stay short.
        gc.freeze()
        self.on_swap(candidate.version)
        log.info(
            "serving champion",
            extra={
                "version": candidate.version,
                "previous": before,
                "format": candidate.model.format,
            },
        )

    def _candidate(self) -> Served | None:
        """The champion, loaded and scored once, unless it is served or was refused."""
        if self._registry is None:
            self._registry = self.connect()
        champion = self._registry.champion()
        self.none_yet = champion is None
        if champion is None:
            raise NotFound(f"{self._registry.name} has no champion yet")
        self._pending = str(champion.version)
        if self._pending == self._refused or (
            self.current is not None and self.current.version == self._pending
        ):
            return None
        candidate = Served(self._pending, self._registry.load_served(self._pending, self.features))
        candidate.predict(self.probe)
        return candidate

    def _report(self, problem: str | None) -> None:
        """Log a problem when it starts or changes, and its end; not at every poll."""
        if problem == self._problem:
            return
        if problem is not None:
            log.warning("champion not refreshed; serving what is loaded", extra={"error": problem})
        else:
            log.info("champion checks work again")
        self._problem = problem

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

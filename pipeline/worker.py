"""The monitoring worker: monitors the served project on an interval, retrains it weekly
and when its population drifts, and exposes what it found to Prometheus.

A small HTTPS app (uvicorn, certificate from the stack's PKI) around an APScheduler
scheduler with one worker thread, so a monitoring run and a retrain never overlap:

- ``monitor`` every `monitor_interval_seconds`: `Monitor.check`; on drift (and with
  `retrain_on_drift`) the drift is audited and the retrain pipeline runs at once;
- ``retrain`` on `retrain_cron` (UTC), the weekly retrain;
- ``/healthz`` is open; ``/metrics`` needs an API key of the project, like the
  endpoint's, since drift and performance figures describe the project's patients in
  aggregate; every other path is 404.

Each job logs in afresh, so no token outlives its TTL in a process that runs for weeks.
A job that fails is logged and counted, and the next one runs as planned.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitoring.metrics import Metrics
from pipeline.monitor import References, watch
from pipeline.retrain import retrain
from safeguards import keys, logs
from safeguards.apikeys import KeyStore, KeyVerifier
from safeguards.errors import SafeguardError
from safeguards.settings import Settings, load_settings

log = logging.getLogger(__name__)

MONITOR_ACTOR, SCHEDULE_ACTOR = "monitoring:worker", "schedule"


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.project = settings.serving_project
        self.metrics = Metrics()
        self.references: References = {}
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )

    def monitor(self) -> None:
        try:
            watched = watch(
                self.settings,
                self.project,
                MONITOR_ACTOR,
                self.references,
                self.settings.retrain_on_drift,
            )
        except SafeguardError as exc:
            self.metrics.finished("failed")
            log.error("monitoring run failed", extra={"error": str(exc)})
            return
        checked, result = watched.checked, watched.retrained
        if checked.analysis is None:
            self.metrics.finished("no_data")
            log.info("nothing to monitor yet", extra={"reason": checked.reason})
            return
        self.metrics.publish(checked.analysis)
        log.info("monitoring run", extra={"report": checked.report, **checked.analysis.summary()})
        if result is not None:
            self.metrics.retrains.labels("drift", result.outcome).inc()
            log.info("retrain", extra={"outcome": result.outcome, **result.record()})
        if watched.retrain_error is not None:
            self.metrics.retrains.labels("drift", "failed").inc()
            log.error("retrain failed", extra={"trigger": "drift", "error": watched.retrain_error})

    def retrain(self, trigger: str, actor: str) -> None:
        try:
            result = retrain(self.settings, self.project, trigger, actor)
        except SafeguardError as exc:
            self.metrics.retrains.labels(trigger, "failed").inc()
            log.error("retrain failed", extra={"trigger": trigger, "error": str(exc)})
            return
        self.metrics.retrains.labels(trigger, result.outcome).inc()
        log.info("retrain", extra={"outcome": result.outcome, **result.record()})

    def start(self) -> None:
        self.scheduler.add_job(
            self.monitor,
            "interval",
            seconds=self.settings.monitor_interval_seconds,
            id="monitor",
            next_run_time=dt.datetime.now(dt.UTC),
        )
        self.scheduler.add_job(
            self.retrain,
            CronTrigger.from_crontab(self.settings.retrain_cron, timezone="UTC"),
            args=("schedule", SCHEDULE_ACTOR),
            id="retrain",
        )
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=True)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    logs.configure(settings.log_level)
    logs.adopt("uvicorn", "uvicorn.error", "apscheduler")
    # Its access log records client addresses; nothing else is logged per request.
    logging.getLogger("uvicorn.access").disabled = True
    worker = Worker(settings)
    project = settings.serving_project
    verifier = KeyVerifier(
        project,
        KeyStore(settings, project, keys.identity(project)).digest,
        settings.serving_key_cache_seconds,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        verdict = await verifier.verify(request.headers.get("authorization"))
        if verdict.status != 200:
            challenge = {"WWW-Authenticate": "Bearer"} if verdict.status == 401 else {}
            return JSONResponse({"error": verdict.message}, verdict.status, headers=challenge)
        return Response(worker.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def not_found(_: Request, __: Exception) -> Response:
        return JSONResponse({"error": "no such endpoint"}, 404)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        worker.start()
        yield
        worker.stop()

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/metrics", metrics)],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )

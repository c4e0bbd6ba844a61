"""The monitoring worker: monitors every served project on an interval, retrains each
weekly and when its population drifts, and exposes what it found to Prometheus.

A small HTTPS app (uvicorn, certificate from the stack's PKI) around an APScheduler
scheduler with one worker thread, so no two runs ever overlap:

- ``monitor`` every `monitor_interval_seconds`: `Monitor.check` of each project; on drift
  (and with `retrain_on_drift`) the drift is audited and the retrain pipeline runs at once;
- ``retrain`` on `retrain_cron` (UTC), the weekly retrain of each project;
- ``/healthz`` is open; ``/metrics`` needs an API key, and answers with the metrics of
  the project that key is bound to (each project's in a registry of its own), since drift
  and performance figures describe a project's patients in aggregate; every other path
  is 404.

The projects are those with a champion when the worker started (`projects.json`, written
by its provision step; the stack restarts the worker when a project gets its first).
Each run logs in afresh as the project's workload identity, so no token outlives its
TTL in a process that runs for weeks. A run that fails is logged and counted, and the
next one runs as planned.
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
from safeguards.apikeys import KeyStore, KeyVerifier, Verdict, bound_project
from safeguards.errors import SafeguardError
from safeguards.settings import Settings, load_settings
from services.monitoring.launcher import watched

log = logging.getLogger(__name__)

MONITOR_ACTOR, SCHEDULE_ACTOR = "monitoring:worker", "schedule"
_NOT_WATCHED = Verdict(403, "other_project", "this API key's project is not watched here")


class Worker:
    def __init__(self, settings: Settings, projects: list[str]) -> None:
        self.settings = settings
        self.projects = projects
        self.metrics = {p: Metrics() for p in projects}
        self.references: dict[str, References] = {p: {} for p in projects}
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )

    def monitor(self) -> None:
        for project in self.projects:
            self.monitor_project(project)

    def monitor_project(self, project: str) -> None:
        metrics = self.metrics[project]
        context = {"project": project}
        try:
            watched = watch(
                self.settings,
                project,
                MONITOR_ACTOR,
                self.references[project],
                self.settings.retrain_on_drift,
            )
        except SafeguardError as exc:
            metrics.finished("failed")
            log.error("monitoring run failed", extra={**context, "error": str(exc)})
            return
        checked, result = watched.checked, watched.retrained
        if checked.analysis is None:
            metrics.finished("no_data")
            log.info("nothing to monitor yet", extra={**context, "reason": checked.reason})
            return
        metrics.publish(checked.analysis)
        summary = checked.analysis.summary()
        log.info("monitoring run", extra={**context, "report": checked.report, **summary})
        if result is not None:
            metrics.retrains.labels("drift", result.outcome).inc()
            log.info("retrain", extra={**context, "outcome": result.outcome, **result.record()})
        if watched.retrain_error is not None:
            metrics.retrains.labels("drift", "failed").inc()
            log.error(
                "retrain failed",
                extra={**context, "trigger": "drift", "error": watched.retrain_error},
            )

    def retrain(self, trigger: str, actor: str) -> None:
        for project in self.projects:
            context = {"project": project, "trigger": trigger}
            try:
                result = retrain(self.settings, project, trigger, actor)
            except SafeguardError as exc:
                self.metrics[project].retrains.labels(trigger, "failed").inc()
                log.error("retrain failed", extra={**context, "error": str(exc)})
                continue
            self.metrics[project].retrains.labels(trigger, result.outcome).inc()
            log.info("retrain", extra={**context, "outcome": result.outcome, **result.record()})

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


def create_app(settings: Settings | None = None, projects: list[str] | None = None) -> Starlette:
    settings = settings or load_settings()
    logs.configure(settings.log_level, fmt=settings.log_format)
    logs.adopt("uvicorn", "uvicorn.error", "apscheduler")
    # Its access log records client addresses; nothing else is logged per request.
    logging.getLogger("uvicorn.access").disabled = True
    projects = watched(settings) if projects is None else projects
    worker = Worker(settings, projects)
    verifiers = {
        p: KeyVerifier(
            p, KeyStore(settings, p, keys.identity(p)).digest, settings.serving_key_cache_seconds
        )
        for p in projects
    }
    log.info("watching projects", extra={"projects": projects})

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "projects": len(projects)})

    async def metrics(request: Request) -> Response:
        header = request.headers.get("authorization")
        parsed = KeyVerifier.parse(header)
        if isinstance(parsed, Verdict):
            verdict = parsed
        else:
            verifier = verifiers.get(str(bound_project(parsed[0])))
            verdict = await verifier.verify(header) if verifier else _NOT_WATCHED
        if verdict.status != 200:
            challenge = {"WWW-Authenticate": "Bearer"} if verdict.status == 401 else {}
            return JSONResponse({"error": verdict.message}, verdict.status, headers=challenge)
        project = str(bound_project(str(verdict.key_id)))
        return Response(worker.metrics[project].render(), media_type=CONTENT_TYPE_LATEST)

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

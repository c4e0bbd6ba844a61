"""The ASGI middleware in front of every route: API keys, readiness, metrics, access log.

Open without a key: ``/healthz`` and ``/livez`` (the process is alive), ``/readyz``
(a champion is loaded and OpenBao, which every new API key is checked against, answers;
which version, and which dependency is missing: nothing else) and ``/openapi.json`` (the
contract's features and the API, built from the contract: no data). The prediction routes and
``/metrics`` need a valid key of the served project, checked before the request body is
read. Any other path gets 404: BentoML's own index page (which loads third-party
scripts), schemas and assets are not served.

``/metrics`` is under the key because a risk histogram moved by a single request tells
whoever watches it that patient's risk band; a Prometheus server scrapes it with a key
of its own (`serving keys create --client prometheus`).

A prediction not answered within `TIMEOUT_SECONDS` (a body sent too slowly, say) gets
504 and its slot is freed; the timer is cancelled as soon as the answer starts, so nothing
of an answered request outlives it.

One access-log line per request names the endpoint, the status, the key id and the
time taken: who called, not what was sent. BentoML's access log is off, as it records
the client's address, and bodies are never logged anywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Protocol

import anyio.to_thread
import bentoml
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safeguards.apikeys import KeyVerifier, Verdict
from safeguards.openbao import HealthProbe
from services.serving.champion import Champion
from services.serving.metrics import ROUTES, Metrics, endpoint_label

access = logging.getLogger("services.serving.access")

OPEN = frozenset({"/healthz", "/livez"})
TIMEOUT_SECONDS = 5.0
# BentoML's own pages (an index with third-party scripts, schemas, assets) are not served.
_NOT_FOUND = Verdict(404, "not_found", "no such endpoint")
_REASONS = {413: "too_large", 422: "invalid_input", 503: "not_ready", 504: "timeout"}


class State(Protocol):
    """What the middleware needs of the running service instance."""

    openapi: bytes
    keys: KeyVerifier
    champion: Champion
    metrics: Metrics
    openbao: HealthProbe


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def readiness(state: State) -> Response:
    served = state.champion.current
    missing = [] if served is not None else ["champion"]
    if not await anyio.to_thread.run_sync(state.openbao.healthy):
        missing.append("openbao")
    version = served.version if served else None
    if missing:
        body = {"status": "not ready", "model_version": version, "unavailable": missing}
        return Response(json.dumps(body), 503, media_type="application/json")
    body = {"status": "ready", "model_version": version}
    return Response(json.dumps(body), 200, media_type="application/json")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class Edge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN:
            await self.app(scope, receive, send)
            return
        state: State = bentoml.get_current_service()
        if scope["path"] == "/readyz":
            await (await readiness(state))(scope, receive, send)
            return
        if scope["path"] == "/openapi.json":
            document = Response(state.openapi, media_type="application/json")
            await document(scope, receive, send)
            return
        started = time.perf_counter()
        if scope["path"] in ROUTES:
            verdict = await state.keys.verify(_header(scope, b"authorization"))
        else:
            verdict = _NOT_FOUND
        status, reason = verdict.status, verdict.reason

        answering: asyncio.Timeout | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if answering is not None:
                    answering.reschedule(None)
            await send(message)

        try:
            if status != 200:
                challenge = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
                await error(status, verdict.message, **challenge)(scope, receive, send)
            elif scope["path"] == "/metrics":
                metrics = Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
                await metrics(scope, receive, send)
            else:
                status = 500
                try:
                    async with asyncio.timeout(TIMEOUT_SECONDS) as answering:
                        await self.app(scope, receive, send_status)
                except TimeoutError:
                    status = 504
                    message = f"the request was not answered within {TIMEOUT_SECONDS:g} s"
                    await error(status, message)(scope, receive, send)
                reason = _REASONS.get(status, "error") if status >= 400 else "ok"
        finally:
            seconds = time.perf_counter() - started
            endpoint = endpoint_label(scope["path"])
            state.metrics.request(endpoint, status, seconds, reason)
            access.info(
                "request",
                extra={
                    "endpoint": endpoint,
                    "status": status,
                    "key_id": verdict.key_id,
                    "ms": round(seconds * 1000, 2),
                },
            )

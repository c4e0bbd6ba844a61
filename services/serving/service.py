"""A project's endpoint, a BentoML service that may receive PHI.

One process serves one project (``HIPAA_MLOPS_SERVING_PROJECT``, set per process by the
stack, which starts one for every project with a champion). It logs in to OpenBao as that
project's serving identity (its contract, the champion, API key digests and its capture,
nothing else), reads the read-only MLflow password of its serving user, and serves the
registry's ``champion`` version, swapped in place when the alias moves (`champion`). What
it accepts is the contract's features (`inputs`), described at ``/openapi.json``
(`openapi`). It listens on HTTPS only, with a certificate from the stack's PKI
(`launcher`, `server`).

Security choices, each against a way PHI could leak or be misused:

- every route but the health probes needs a project-bound API key (`apikeys`, `edge`);
- a request is the contract's features and nothing else; identifiers are refused
  with 422, and no error repeats a submitted value (`inputs`). BentoML's own request
  validation is bypassed for that reason: it answers 400 and logs the pydantic error,
  whose text carries the input. The body is read here unparsed and validated once;
- logs go through the PHI-scrubbing JSON handler (`safeguards.logs`); BentoML's access
  log (client addresses) and HTTP metrics (raw paths as labels) are off, replaced by
  `edge` and `metrics`; no request body is logged;
- captured predictions hold features, probability, version, time and a random
  prediction id only (`capture`); the caller reports outcomes against that id.

Performance follows what was measured for BentoML 1.4 on this machine: one worker, a
full garbage collection and `gc.freeze()` once the model is loaded (BentoML's large heap
otherwise stalls every request for ~0.2 s every 2 s), nothing kept per request once it is
answered (no tracing span; our own request timeout, `edge`, instead of BentoML's, whose
timer outlives the request), so that full collections stay short, and responses built
directly, since BentoML regenerates a JSON schema for every response it serialises.
"""

from __future__ import annotations

import gc
import json
import logging
from typing import Any, cast

import bentoml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import contract as contracts
from safeguards import keys, logs, objectstore, openbao
from safeguards.apikeys import KeyStore, KeyVerifier
from safeguards.errors import ConfigError
from safeguards.registry import ProjectRegistry, serving_user
from safeguards.settings import Settings, load_settings
from services.serving import capture, inputs, openapi
from services.serving.capture import Capture
from services.serving.champion import Champion
from services.serving.edge import Edge, error
from services.serving.metrics import Metrics

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class Body(bentoml.IODescriptor):
    """The request body, read but not parsed: validation and its errors are ours.

    None when the body is over the size limit, which is then not read further."""

    body: bytes | None = None

    @classmethod
    async def from_http_request(cls, request: Request, serde: Any) -> Body:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return cls(body=None)
            chunks.append(chunk)
        return cls(body=b"".join(chunks))


def _route_logs(settings: Settings) -> None:
    """Every record through the PHI-scrubbing handler; no per-request lines but ours."""
    logs.configure(settings.log_level, fmt=settings.log_format)
    logs.adopt("bentoml", "uvicorn", "uvicorn.error", "circus")
    logging.getLogger("uvicorn.access").disabled = True


@bentoml.service(
    name="endpoint",
    workers=1,
    # Past 64 requests in flight BentoML answers 503 at once instead of queueing them. Its
    # traffic timeout is replaced by the edge's (`server`).
    traffic={"max_concurrency": 64},
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
    # No OpenTelemetry span per request (every URL excluded): BentoML records every span,
    # sampled or not, and the stack exports spans nowhere. Set in the service's own config,
    # since BentoML reloads its configuration from it when it builds the app.
    tracing={"excluded_urls": "."},
)
class Endpoint:
    def __init__(self) -> None:
        settings = load_settings()
        _route_logs(settings)
        project = settings.serving_project
        if project is None:
            raise ConfigError("an endpoint serves one project: set HIPAA_MLOPS_SERVING_PROJECT")
        self.project = project
        bao = openbao.login(settings, keys.serving_identity(project))
        self.models = inputs.RequestModels(contracts.load(bao, project))
        self.openapi = json.dumps(
            openapi.document(self.models, project, bentoml.__version__)
        ).encode()
        self.metrics = Metrics()
        self.openbao = openbao.HealthProbe(settings)
        self.keys = KeyVerifier(
            project,
            KeyStore(settings, project, keys.serving_identity(project)).digest,
            settings.serving_key_cache_seconds,
        )
        self.capture = Capture(
            lambda: objectstore.open_store(settings, project, role="serving"),
            self.models.contract,
            settings.serving_capture_records,
            settings.serving_capture_seconds,
            on_drop=self.metrics.capture_dropped.inc,
        )
        self.champion = Champion(
            lambda: ProjectRegistry(
                settings,
                project,
                openbao.login(settings, keys.serving_identity(project)),
                user=serving_user(project),
            ),
            self.models.contract.features,
            self.models.columns([self.models.example]),
            settings.serving_poll_seconds,
            on_swap=self._swapped,
        )
        self.champion.refresh()
        self.champion.start()
        self.capture.start()
        gc.collect()
        gc.freeze()

    def _swapped(self, version: str) -> None:
        self.metrics.swaps.inc()
        self.metrics.model_version.set(float(version))

    def _predict(self, body: bytes | None, batch: bool) -> Response:
        if body is None:
            return error(413, f"the request body is over {MAX_BODY_BYTES} bytes")
        served = self.champion.current
        if served is None:
            why = "has no champion model yet" if self.champion.none_yet else "has no model loaded"
            return error(503, f"project {self.project} {why}")
        invalid: list[inputs.Invalid] = []
        try:
            if batch:
                parsed, invalid = self.models.parse_batch(body)
            else:
                parsed = [self.models.parse_record(body)]
        except inputs.InvalidInput as exc:
            return JSONResponse({"error": "invalid input", "problems": exc.problems}, 422)
        records = [r for r in parsed if r is not None]
        if not records:
            problems = [{"field": f"records[{i.index}]", "message": "invalid"} for i in invalid]
            return JSONResponse({"error": "no valid record", "problems": problems}, 422)
        try:
            probabilities = served.predict(self.models.columns(records))
        except Exception as exc:
            log.error("prediction failed", extra={"error": type(exc).__name__})
            return error(500, "the prediction failed")
        for probability in probabilities:
            self.metrics.risk.observe(probability)
        ids = capture.prediction_ids(len(records))
        self.capture.add(records, probabilities, served.version, ids)
        result: dict[str, object] = {"model_version": served.version}
        if batch:
            scored = iter(zip(probabilities, ids, strict=True))
            answers = [next(scored) if r is not None else (None, None) for r in parsed]
            result["probabilities"] = [p for p, _ in answers]
            result["prediction_ids"] = [i for _, i in answers]
            if invalid:
                result["invalid"] = [i.model_dump() for i in invalid]
        else:
            result["probability"] = probabilities[0]
            result["prediction_id"] = ids[0]
        return JSONResponse(result, headers={"X-Model-Version": served.version})

    @bentoml.api(route="/v1/predict", input_spec=Body, output_spec=inputs.Prediction)
    async def predict(self, body: bytes | None) -> Response:
        """The contract's label for one record of its features."""
        return self._predict(body, batch=False)

    @bentoml.api(route="/v1/predict/batch", input_spec=Body, output_spec=inputs.Predictions)
    async def predict_batch(self, body: bytes | None) -> Response:
        """The label for up to 1000 records, in order (`{"records": [...]}`)."""
        return self._predict(body, batch=True)

    @bentoml.on_shutdown
    def close(self) -> None:
        """Stop polling and write the last capture batch."""
        self.champion.stop()
        self.capture.close()


# The decorator made the class a BentoML Service, which mypy cannot see.
cast(Any, Endpoint).add_asgi_middleware(Edge)

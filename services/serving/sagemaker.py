"""The serving image under SageMaker's inference container contract.

SageMaker runs the image as ``docker run IMAGE serve``, with the model archive that
`hipaa-mlops model package` made unpacked at ``/opt/ml/model``, and asks ``GET /ping``
and ``POST /invocations`` on port 8080. So the image that passed the compose stack's
tests is the one a SageMaker endpoint runs (`terraform/modules/endpoint`).

What differs from the stack's endpoint, and why:

- No OpenBao, MLflow or API keys: the container runs with network isolation and reaches
  nothing. SageMaker's runtime API authenticates every caller with IAM and carries the
  request over TLS; the container's listener is plain HTTP inside the isolated
  instance, as the contract requires.
- The model is the package's, checked when it loads: the gate approved that version, its
  contract is the one it was trained under (fingerprint), and it is skops with our
  trusted types or ONNX, as on the stack (`safeguards.registry.scorer_of`); a version
  with an ONNX twin (`model.twin`) is served by its twin, as on the stack.
- No capture: SageMaker's own data capture, off by default in the Terraform module.

What is the same: a request is the contract's features and nothing else, validated by
the same request models (`inputs`): an identifier is refused with 422, and no error
repeats a value that was sent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import contract as contracts
from safeguards.errors import GateRefused, IntegrityError
from safeguards.registry import TWIN, OnnxScorer, Scorer, score_columns, scorer_of
from services.serving import inputs
from services.serving.edge import error

log = logging.getLogger(__name__)

MODEL_DIR = Path("/opt/ml/model")
PORT = 8080
MAX_BODY_BYTES = 1024 * 1024
# What `model package` writes beside the MLflow model directory.
MANIFEST = "hipaa-mlops.json"
CONTRACT = "contract.yaml"


@dataclass(frozen=True)
class Packaged:
    """A packaged champion: its project, version, contract and model."""

    project: str
    version: str
    contract: contracts.Contract
    scorer: Scorer


def load(root: Path) -> Packaged:
    """The package unpacked at `root`, refused unless the gate approved it and its model is
    of the contract it names."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        text = (root / CONTRACT).read_text()
    except (OSError, ValueError):
        raise IntegrityError(f"{root} holds no readable model package") from None
    if not isinstance(manifest, dict) or not all(
        isinstance(manifest.get(field), str) for field in ("project", "model_version")
    ):
        raise IntegrityError("the package's manifest names no project and version")
    contract = contracts.parse(text, "the package's contract")
    if manifest.get("contract_fingerprint") != contract.fingerprint:
        raise IntegrityError("the package's contract is not the one its model was trained under")
    if manifest.get("gate") != "approved":
        raise GateRefused("the packaged version was not approved by the promotion gate")
    if (root / TWIN).is_file():
        scorer: Scorer = OnnxScorer((root / TWIN).read_bytes(), contract.features)
    else:
        scorer = scorer_of(root / "model", contract.features, "the packaged model")
    return Packaged(manifest["project"], manifest["model_version"], contract, scorer)


def app(root: Path = MODEL_DIR) -> Starlette:
    """The container's application: `/ping` and `/invocations` over the package at `root`."""
    packaged = load(root)
    models = inputs.RequestModels(packaged.contract)

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def invocations(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, "send application/json")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return error(413, f"the request body is over {MAX_BODY_BYTES} bytes")
        try:
            decoded = json.loads(body)
        except ValueError:
            return error(400, "the body is not JSON")
        # A batch is {"records": [...]}, as the stack's /v1/predict/batch takes it.
        batch = isinstance(decoded, dict) and "records" in decoded
        try:
            if batch:
                parsed, invalid = models.parse_batch(body)
                if invalid:
                    problems = [
                        {**p, "field": f"records[{i.index}].{p.get('field', '')}"}
                        for i in invalid
                        for p in i.problems
                    ]
                    raise inputs.InvalidInput(problems)
            else:
                parsed = [models.parse_record(body)]
        except inputs.InvalidInput as exc:
            return JSONResponse({"error": "invalid input", "problems": exc.problems}, 422)
        records = [r for r in parsed if r is not None]
        try:
            scores = score_columns(packaged.scorer, models.columns(records))
            probabilities = [float(p) for p in scores]
        except Exception as exc:
            log.error("prediction failed", extra={"error": type(exc).__name__})
            return error(500, "the prediction failed")
        result: dict[str, object] = {"model_version": packaged.version}
        if batch:
            result["probabilities"] = probabilities
        else:
            result["probability"] = probabilities[0]
        return JSONResponse(result, headers={"X-Model-Version": packaged.version})

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ]
    )


def serve(root: Path = MODEL_DIR) -> None:
    """Listen on every interface of the (isolated) container, port 8080, until stopped."""
    application = app(root)
    log.info("serving the packaged model", extra={"port": PORT})
    uvicorn.run(application, host="0.0.0.0", port=PORT, access_log=False, log_config=None)  # noqa: S104

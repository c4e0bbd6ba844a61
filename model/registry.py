"""The project's side of MLflow: its experiment, its registered model, the champion alias.

Every call runs as the project's own MLflow user over TLS, with the password read from
the project's KV path in OpenBao; the operator creates the experiment and the registered
model and grants that user EDIT on them (`services/mlflow/launcher.provision`), so a
project cannot reach, or squat the name of, another's. Models are saved with skops, not
pickle, so loading one never runs code it carries.

A version is registered in one request, with every lineage tag, after its artifacts are
in: if MLflow goes away midway, there is either a complete version or none.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import mlflow
import pandas as pd
import requests
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException, RestException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from safeguards import credentials, keys
from safeguards.errors import AccessDenied, NotFound, Unavailable
from safeguards.settings import Settings
from services.mlflow import launcher

CHAMPION = "champion"
HISTORY_TAG = "champion_history"
# Lineage every version carries from the moment it exists; the gate refuses one without.
LINEAGE = (
    "project",
    "dataset.name",
    "dataset.content_hash",
    "dataset.revision",
    "dataset.evidence_id",
    "code.git_commit",
    "trained_by",
)


@contextlib.contextmanager
def mlflow_errors(doing: str) -> Iterator[None]:
    """MLflow's exceptions as ours, with a message that never echoes a request body."""
    try:
        yield
    except RestException as exc:
        status = exc.get_http_status_code()  # type: ignore[no-untyped-call]
        if status in (401, 403):
            raise AccessDenied(f"MLflow refused {doing} ({status})") from None
        if status == 404 or exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"MLflow has no such resource when {doing}") from None
        raise Unavailable(f"MLflow failed {doing} ({exc.error_code})") from None
    except (MlflowException, requests.RequestException, OSError) as exc:
        raise Unavailable(f"MLflow is unreachable or failed {doing}") from exc


@dataclass(frozen=True)
class Registered:
    version: str
    run_id: str


class ProjectRegistry:
    """One project's experiment and registered model, reached as the project's user (or
    as `user`, another of the project's MLflow users: serving reads as its own)."""

    def __init__(
        self, settings: Settings, project: str, bao: hvac.Client, user: str | None = None
    ) -> None:
        self.settings = settings
        self.project = keys.validate_project(project)
        self.name = launcher.model_name(project)
        self.url = launcher.url(settings)
        self.user = user or launcher.project_user(project)
        path = launcher.credential_path(project, self.user)
        self._password = credentials.read(bao, path)["password"]

    @contextlib.contextmanager
    def session(self) -> Iterator[MlflowClient]:
        """MLflow reads its credentials and CA from the environment: set them, then restore."""
        env = {
            "MLFLOW_TRACKING_USERNAME": self.user,
            "MLFLOW_TRACKING_PASSWORD": self._password,
            "MLFLOW_TRACKING_SERVER_CERT_PATH": str(self.settings.ca_bundle),
            # Proxied transfers only: presigned direct uploads would bypass the server's
            # SSE-KMS arguments and need the client to reach the object store.
            "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
            "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        defaults = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
        saved = {k: os.environ.get(k) for k in [*env, *defaults]}
        os.environ.update(env)
        for key, value in defaults.items():
            os.environ.setdefault(key, value)
        previous_uri = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.url)
        try:
            yield MlflowClient(self.url, self.url)
        finally:
            mlflow.set_tracking_uri(previous_uri)
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old

    def experiment_id(self, client: MlflowClient) -> str:
        with mlflow_errors("finding the project's experiment"):
            experiment = client.get_experiment_by_name(launcher.experiment_name(self.project))
        if experiment is None:
            raise NotFound(
                f"project '{self.project}' has no experiment; run `projects create` first"
            )
        return str(experiment.experiment_id)

    def log_run(
        self,
        model: Pipeline,
        example: pd.DataFrame,
        params: dict[str, Any],
        metrics: dict[str, float],
        lineage: dict[str, str],
        artifacts: dict[str, bytes],
    ) -> tuple[str, str]:
        """Log a finished run with its model and artifacts; returns (run id, model URI)."""
        with self.session() as client:
            experiment = self.experiment_id(client)
            with (
                mlflow_errors("logging the training run"),
                _quiet(),
                mlflow.start_run(experiment_id=experiment) as run,
            ):
                mlflow.log_params(params)
                mlflow.log_metrics(metrics)
                mlflow.set_tags(lineage)
                with tempfile.TemporaryDirectory() as tmp:
                    for name, data in artifacts.items():
                        (Path(tmp) / name).write_bytes(data)
                    mlflow.log_artifacts(tmp)
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=infer_signature(example, model.predict_proba(example)[:, 1]),
                    input_example=example,
                    pip_requirements=_requirements(),
                )
        return run.info.run_id, info.model_uri

    def register(self, run_id: str, model_uri: str, lineage: dict[str, str]) -> Registered:
        """One request creates the version with every lineage tag, or nothing."""
        with self.session(), mlflow_errors("registering the model version"), _quiet():
            version = mlflow.register_model(model_uri, self.name, tags=lineage)
        return Registered(str(version.version), run_id)

    def versions(self) -> list[ModelVersion]:
        with self.session() as client, mlflow_errors("listing model versions"):
            found = client.search_model_versions(f"name = '{self.name}'")
        return sorted(found, key=lambda v: int(v.version))

    def version(self, version: str) -> ModelVersion:
        with self.session() as client, mlflow_errors(f"reading version {version}"):
            return client.get_model_version(self.name, version)

    def champion(self) -> ModelVersion | None:
        with self.session() as client, mlflow_errors("reading the champion"):
            try:
                return client.get_model_version_by_alias(self.name, CHAMPION)
            except RestException as exc:
                # MLflow answers an alias that was never set as an invalid parameter.
                if exc.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
                    return None
                raise

    def load(self, version: str) -> Pipeline:
        with self.session(), mlflow_errors(f"loading version {version}"):
            return mlflow.sklearn.load_model(f"models:/{self.name}/{version}")

    def download(self, version: ModelVersion, into: Path) -> list[Path]:
        """Every file of the version: its model directory and its run's artifacts."""
        with self.session() as client, mlflow_errors(f"downloading version {version.version}"):
            mlflow.artifacts.download_artifacts(
                f"models:/{self.name}/{version.version}", dst_path=str(into / "model")
            )
            client.download_artifacts(str(version.run_id), "", str(into / "run"))
        return [p for p in into.rglob("*") if p.is_file()]

    def run_record(self, run_id: str) -> dict[str, Any]:
        """The run's params, tags and metrics, for the PHI scan and the card."""
        with self.session() as client, mlflow_errors("reading the training run"):
            run = client.get_run(run_id)
        return {"params": run.data.params, "tags": run.data.tags, "metrics": run.data.metrics}

    def history(self) -> list[str]:
        with self.session() as client, mlflow_errors("reading the champion history"):
            tags = client.get_registered_model(self.name).tags
        return list(json.loads(tags.get(HISTORY_TAG, "[]")))

    def tag_version(self, version: str, key: str, value: str) -> None:
        with self.session() as client, mlflow_errors("tagging a model version"):
            client.set_model_version_tag(self.name, version, key, value)

    def set_champion(self, version: str, history: list[str]) -> None:
        """Record the history first, then move the alias: a crash between the two leaves a
        history one ahead, which the next promotion or rollback repairs."""
        with self.session() as client, mlflow_errors("moving the champion alias"):
            client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(history))
            client.set_registered_model_alias(self.name, CHAMPION, version)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow prints links and progress to stdout and stderr; the CLI reports on its own."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _requirements() -> list[str]:
    """Pinned from this environment, so serving installs exactly what trained the model."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("scikit-learn", "skops", "pandas", "numpy", "scipy")]

"""A project's side of MLflow: its experiment, its registered model, the champion alias,
and the models it holds, loaded without running code they carry.

Every call runs as one of the project's own MLflow users over TLS, with the password read
from the project's KV path in OpenBao; the operator creates the experiment and the
registered model and grants those users EDIT (training) or READ (serving) on them
(`services.mlflow.launcher.provision_project`), so a project cannot reach, or squat the
name of, another's.

A version is registered in one request, with every lineage tag, after its artifacts are
in: if MLflow goes away midway, there is either a complete version or none.

Models are scikit-learn pipelines saved with skops, or ONNX graphs. Neither is pickle:
a skops file is loaded with this module's own list of trusted types, never the list the
model's metadata carries (a crafted model could trust anything there), and an ONNX graph
is run by ONNX Runtime. Either way the result is a `Scorer`: the probability of the
positive class for each row of the contract's features.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import hvac
import mlflow
import numpy as np
import pandas as pd
import requests
import yaml
from mlflow.entities import FileInfo
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException, RestException
from mlflow.models import infer_signature
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.tracking import MlflowClient

from safeguards import artifacts, credentials, keys, objectstore
from safeguards.errors import AccessDenied, ConfigError, IntegrityError, NotFound, Unavailable
from safeguards.settings import Settings

CHAMPION = "champion"
HISTORY_TAG = "champion_history"
# A version's ONNX twin (`model.twin`): the run artifact that holds it, and the tag that
# says whether there is one.
TWIN, TWIN_TAG = "twin.onnx", "model.twin"
# Lineage every version carries from the moment it exists; the gate refuses one without.
LINEAGE = (
    "project",
    "contract.fingerprint",
    "dataset.name",
    "dataset.content_hash",
    "dataset.revision",
    "dataset.evidence_id",
    "code.git_commit",
    "trained_by",
)
# Types a skops file may hold beyond skops's own safe defaults: what scikit-learn's
# gradient boosting keeps (its tree predictors and their record dtype). Nothing else.
TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


# -- names -------------------------------------------------------------------------------


def url(settings: Settings) -> str:
    return settings.mlflow_url


def experiment_name(project: str) -> str:
    return f"{keys.validate_project(project)}/model"


def model_name(project: str) -> str:
    return f"{keys.validate_project(project)}-model"


def project_user(project: str) -> str:
    """The MLflow user the project's workload (training, monitoring) works as."""
    return keys.identity(project)


def serving_user(project: str) -> str:
    """The read-only user the project's serving endpoint loads its champion as."""
    return f"serving-{keys.validate_project(project)}"


def credential_path(project: str, user: str) -> str:
    """Where `user`'s password is kept: the project's own KV path, which its workload reads."""
    paths = {
        project_user(project): f"projects/{project}/mlflow",
        serving_user(project): f"projects/{project}/mlflow-serving",
    }
    if user not in paths:
        raise ConfigError(f"'{user}' is not an MLflow user of project '{project}'")
    return paths[user]


# -- models as scorers -------------------------------------------------------------------


class Scorer(Protocol):
    """A model of the contract's features: the positive class's probability per row."""

    @property
    def format(self) -> str: ...

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray: ...


# A model's input, column by column: a frame, or (for ONNX) arrays by feature name.
Columns: TypeAlias = pd.DataFrame | Mapping[str, np.ndarray]


@dataclass(frozen=True)
class SklearnScorer:
    """A scikit-learn pipeline, fed the features as a frame (`contract.model_frame`)."""

    model: Any
    format: str = "skops"

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(frame)[:, 1], dtype="float64")


_ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}


class OnnxScorer:
    """An ONNX graph with one input per feature, run by ONNX Runtime on one thread; its
    output of two columns per row (or the one named ``probabilities``) gives the score."""

    format = "onnx"

    def __init__(self, model: bytes, features: list[str]) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(
                model, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise IntegrityError(f"the ONNX model does not load ({type(exc).__name__})") from None
        inputs = {i.name: i.type for i in self.session.get_inputs()}
        if sorted(inputs) != sorted(features):
            raise ConfigError(
                "the ONNX model's inputs are not the contract's features, one input each "
                f"({len(inputs)} inputs for {len(features)} features)"
            )
        unknown = sorted(n for n, t in inputs.items() if t not in _ONNX_TYPES)
        if unknown:
            raise ConfigError(f"ONNX inputs of an unsupported type: {', '.join(unknown)}")
        self.inputs = {name: _ONNX_TYPES[kind] for name, kind in inputs.items()}
        outputs = self.session.get_outputs()
        named = [o.name for o in outputs if o.name == "probabilities"]
        pairs = [o.name for o in outputs if o.shape and o.shape[-1] == 2]
        if not (named or pairs):
            raise ConfigError("the ONNX model has no output of two probabilities per row")
        self.output = (named or pairs)[-1]

    def probabilities(self, frame: Columns) -> np.ndarray:
        """Scores of a frame's rows, or of columns as arrays (no frame on the hot path)."""
        feed: dict[str, np.ndarray] = {}
        for name, dtype in self.inputs.items():
            values = np.asarray(frame[name])
            if dtype is object:
                values = values.astype(str)
            feed[name] = values.astype(dtype).reshape(-1, 1)
        (result,) = self.session.run([self.output], feed)
        return np.asarray(result, dtype="float64")[:, 1]


def score_columns(scorer: Scorer, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Scores of rows given column by column: an ONNX model takes the arrays as they are,
    with no frame on the way; a pipeline gets them as a frame."""
    if isinstance(scorer, OnnxScorer):
        return scorer.probabilities(columns)
    return scorer.probabilities(pd.DataFrame(columns))


def scorer_of(root: Path, features: list[str], what: str) -> Scorer:
    """The model in MLflow model directory `root` as a scorer of `features`: ONNX, or skops
    with our trusted types; anything else is refused (`what` names it in the error)."""
    try:
        flavors = yaml.safe_load((root / "MLmodel").read_text()).get("flavors", {})
    except (OSError, yaml.YAMLError, AttributeError):
        raise IntegrityError(f"{what} has no readable MLmodel file") from None
    if "onnx" in flavors:
        return OnnxScorer((root / flavors["onnx"]["data"]).read_bytes(), features)
    if flavors.get("sklearn", {}).get("serialization_format") != "skops":
        raise IntegrityError(f"{what} is neither a skops nor an ONNX model")
    return SklearnScorer(load_skops((root / flavors["sklearn"]["pickled_model"]).read_bytes()))


def load_skops(data: bytes) -> Any:
    """A skops file's object, refused if it holds a type outside our trusted set."""
    import skops.io

    try:
        untrusted = set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    except Exception as exc:
        raise IntegrityError(f"not a readable skops file ({type(exc).__name__})") from None
    if untrusted:
        raise IntegrityError(
            f"the skops file holds types outside the trusted set: {', '.join(sorted(untrusted))}"
        )
    return skops.io.loads(data, trusted=list(TRUSTED_TYPES))


# -- the registry ------------------------------------------------------------------------


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
        if status == 400 or exc.error_code == "INVALID_PARAMETER_VALUE":
            raise ConfigError(f"MLflow refused {doing}: a parameter is invalid") from None
        raise Unavailable(f"MLflow failed {doing} ({exc.error_code})") from None
    except (MlflowException, requests.RequestException, OSError) as exc:
        raise Unavailable(f"MLflow is unreachable or failed {doing}") from exc


@dataclass(frozen=True)
class Registered:
    version: str
    run_id: str


class ProjectArtifactRepository(ArtifactRepository):
    """MLflow's artifacts of a project, in its `models` zone, through the store of the
    project's open session (`safeguards.artifacts`)."""

    def __init__(
        self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        parsed = urllib.parse.urlparse(artifact_uri)
        if parsed.scheme != artifacts.SCHEME:
            raise ConfigError(f"not an artifact URI of scheme {artifacts.SCHEME}")
        self.project = keys.validate_project(parsed.netloc)
        self.root = objectstore.validate_key(parsed.path.strip("/"))

    def _store(self) -> objectstore.ObjectStore:
        return artifacts.store_of(self.project)

    def _key(self, path: str | None) -> str:
        return objectstore.validate_key(posixpath.join(self.root, path)) if path else self.root

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        name = posixpath.join(artifact_path or "", os.path.basename(local_file))
        self._store().put(objectstore.MODELS_ZONE, self._key(name), Path(local_file).read_bytes())

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        store, base = self._store(), Path(local_dir)
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            name = posixpath.join(artifact_path or "", path.relative_to(base).as_posix())
            store.put(objectstore.MODELS_ZONE, self._key(name), path.read_bytes())

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """The files and directories right under `path`, as MLflow lists them."""
        prefix = self._key(path) + "/"
        entries: dict[str, FileInfo] = {}
        for key in self._store().list(objectstore.MODELS_ZONE, prefix):
            first, _, rest = key[len(prefix) :].partition("/")
            name = posixpath.join(path or "", first)
            entries.setdefault(name, FileInfo(name, bool(rest), None))
        return sorted(entries.values(), key=lambda f: f.path)

    def download_artifacts(self, artifact_path: str, dst_path: str | None = None) -> str:
        """Every file at or under `artifact_path`, one after the other: a refusal arrives
        as our own error (MLflow's parallel download folds failures into one message)."""
        store, base = self._store(), self._key(artifact_path)
        found = [
            key
            for key in store.list(objectstore.MODELS_ZONE, base)
            if key == base or key.startswith(base + "/")
        ]
        if not found:
            raise NotFound(f"no such artifact of project '{self.project}'")
        into = Path(dst_path or tempfile.mkdtemp())
        for key in found:
            local = into / key[len(self.root) + 1 :]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(store.get(objectstore.MODELS_ZONE, key))
        return str(into / artifact_path) if artifact_path else str(into)

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        data = self._store().get(objectstore.MODELS_ZONE, self._key(remote_file_path))
        Path(local_path).write_bytes(data)

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        store = self._store()
        prefix = self._key(artifact_path)
        for key in store.list(objectstore.MODELS_ZONE, prefix):
            if key == prefix or key.startswith(prefix + "/"):
                store.delete(objectstore.MODELS_ZONE, key)


class ProjectRegistry:
    """One project's experiment and registered model, reached as the project's user (or
    as `user`, another of the project's MLflow users: serving reads as its own)."""

    def __init__(
        self, settings: Settings, project: str, bao: hvac.Client, user: str | None = None
    ) -> None:
        self.settings = settings
        self.project = keys.validate_project(project)
        self.name = model_name(project)
        self.url = url(settings)
        self.user = user or project_user(project)
        path = credential_path(project, self.user)
        self._password = credentials.read(bao, path)["password"]
        role = "serving" if self.user == serving_user(project) else "workload"
        self.store = objectstore.store_with(settings, bao, project, role)

    @contextlib.contextmanager
    def session(self) -> Iterator[MlflowClient]:
        """MLflow reads its credentials and CA from the environment: set them, then restore.
        The project's artifacts are reached through the role's own store meanwhile."""
        env = {
            "MLFLOW_TRACKING_USERNAME": self.user,
            "MLFLOW_TRACKING_PASSWORD": self._password,
            "MLFLOW_TRACKING_SERVER_CERT_PATH": str(self.settings.ca_bundle),
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
            with artifacts.using(self.store):
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
            experiment = client.get_experiment_by_name(experiment_name(self.project))
        if experiment is None:
            raise NotFound(
                f"project '{self.project}' has no experiment; run `projects create` first"
            )
        return str(experiment.experiment_id)

    def log_run(
        self,
        model: Any,
        example: pd.DataFrame,
        params: dict[str, Any],
        metrics: dict[str, float],
        lineage: dict[str, str],
        artifacts: dict[str, bytes],
    ) -> tuple[str, str]:
        """Log a finished run with its model (a scikit-learn pipeline, or an ONNX graph's
        bytes) and artifacts; returns (run id, model URI)."""
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
                info = self._log_model(model, example)
        return run.info.run_id, info.model_uri

    def _log_model(self, model: Any, example: pd.DataFrame) -> Any:
        if isinstance(model, bytes):
            import onnx

            scorer = OnnxScorer(model, list(example.columns))
            signature = infer_signature(example, scorer.probabilities(example))
            return mlflow.onnx.log_model(
                onnx.load_model_from_string(model),
                name="model",
                signature=signature,
                pip_requirements=_requirements("onnx", "onnxruntime"),
                save_as_external_data=False,
            )
        return mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            skops_trusted_types=list(TRUSTED_TYPES),
            signature=infer_signature(example, model.predict_proba(example)[:, 1]),
            input_example=example,
            pip_requirements=_requirements("scikit-learn", "skops"),
        )

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

    def load(self, version: str, features: list[str]) -> Scorer:
        """Version `version` as a scorer of `features`, loaded without running its code."""
        with tempfile.TemporaryDirectory() as tmp:
            root = self.model_directory(version, Path(tmp))
            return scorer_of(root, features, f"version {version}")

    def twin(self, version: ModelVersion) -> bytes:
        """The ONNX twin logged with version `version`'s run (`model.twin`)."""
        with (
            self.session() as client,
            mlflow_errors(f"reading the twin of version {version.version}"),
            tempfile.TemporaryDirectory() as tmp,
        ):
            return Path(client.download_artifacts(str(version.run_id), TWIN, tmp)).read_bytes()

    def load_served(self, version: str, features: list[str]) -> Scorer:
        """What serves version `version`: its ONNX twin when it has one, else the model.
        Only for a version the gate approved: the gate is what checks the twin."""
        found = self.version(version)
        if found.tags.get(TWIN_TAG) == "onnx":
            return OnnxScorer(self.twin(found), features)
        return self.load(version, features)

    def model_directory(self, version: str, into: Path) -> Path:
        """Version `version`'s MLflow model directory (its MLmodel and model file), in
        `into`."""
        with self.session(), mlflow_errors(f"loading version {version}"):
            return Path(
                mlflow.artifacts.download_artifacts(
                    f"models:/{self.name}/{version}", dst_path=str(into)
                )
            )

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


def _requirements(*packages: str) -> list[str]:
    """Pinned from this environment, so serving installs exactly what trained the model."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in (*packages, "pandas", "numpy")]

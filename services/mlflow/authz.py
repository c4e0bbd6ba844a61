"""MLflow's basic auth, with the names of experiments and registered models kept the
operator's.

MLflow lets any authenticated user create an experiment or a registered model (and
become its manager) and rename what it may edit. On a platform of several projects that
lets one project take the names of another before it exists, and keep write access to
them once it does. Configured as the server's ``authorization_function``, this check runs
first on every request: it authenticates with MLflow's own basic auth, then refuses to
anyone but an admin every request that creates or renames an experiment or a registered
model. The one exception is a create of a name that already exists, which changes
nothing (MLflow answers RESOURCE_ALREADY_EXISTS); `mlflow.register_model` sends one
before every version.

Runs inside the MLflow server process: it imports MLflow only.
"""

from __future__ import annotations

from flask import Response, has_request_context, make_response, request
from mlflow.exceptions import MlflowException
from mlflow.server import handlers
from mlflow.server.auth import authenticate_request_basic_auth, store
from werkzeug.datastructures import Authorization


def _paths(base: str) -> set[str]:
    return {*handlers._get_paths(base), *handlers._get_paths(base, version=3)}  # type: ignore[no-untyped-call]


_CREATE_EXPERIMENT = _paths("/mlflow/experiments/create")
_CREATE_MODEL = _paths("/mlflow/registered-models/create")
_RENAMES = _paths("/mlflow/registered-models/rename") | _paths("/mlflow/experiments/update")
_GUARDED = _CREATE_EXPERIMENT | _CREATE_MODEL | _RENAMES


def _exists(path: str, name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        if path in _CREATE_EXPERIMENT:
            store_ = handlers._get_tracking_store()
            return store_.get_experiment_by_name(name) is not None  # type: ignore[no-untyped-call]
        handlers._get_model_registry_store().get_registered_model(name)  # type: ignore[no-untyped-call]
    except MlflowException:
        return False
    return True


def _forbidden() -> Response:
    response = make_response(
        "Permission denied: only the platform operator creates or renames experiments "
        "and registered models"
    )
    response.status_code = 403
    return response


def authenticate_request() -> Authorization | Response:
    """MLflow's basic auth, then the refusal of names that are the operator's to give."""
    result = authenticate_request_basic_auth()
    if not isinstance(result, Authorization) or not has_request_context():
        return result
    path = request.path
    if request.method != "POST" or path not in _GUARDED:
        return result
    if store.get_user(str(result.username)).is_admin:
        return result
    body = request.get_json(silent=True) or {}
    if path not in _RENAMES and _exists(path, body.get("name")):
        return result
    return _forbidden()

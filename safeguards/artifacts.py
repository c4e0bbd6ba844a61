"""MLflow's artifacts of a project, kept in the project's own `models` zone.

Each project's experiment is created with the artifact location
``hipaa-mlops://<project>/mlflow`` (`location`), and MLflow hands every artifact URI of that
scheme to `repository` (an ``mlflow.artifact_repository`` entry point), which makes a
`safeguards.registry.ProjectArtifactRepository`. It reads and writes through the object
store of the registry session open for the project (`ProjectRegistry.session`, `using`):
in the sandbox every file is sealed under the project's models key, on the stack it goes
to the project's ``<project>-models`` bucket with SSE-KMS under that key. MLflow's server
never touches an artifact and holds no storage credential; a project's identity reaches
only its own zone; shredding the project's keys makes its models, cards and evaluation
files unreadable.

Outside a session of its project the repository refuses: there is no ambient credential to
fall back on. This module imports nothing of MLflow: MLflow loads it while it starts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from safeguards import keys
from safeguards.errors import AccessDenied
from safeguards.objectstore import ObjectStore

SCHEME = "hipaa-mlops"
# The stores of the sessions open in this process, by project. Not a context variable:
# MLflow moves files on worker threads of its own.
_open: dict[str, ObjectStore] = {}
_lock = threading.Lock()


def location(project: str) -> str:
    """The artifact location of `project`'s experiment."""
    return f"{SCHEME}://{keys.validate_project(project)}/mlflow"


@contextmanager
def using(store: ObjectStore) -> Iterator[None]:
    """Let MLflow reach the artifacts of `store`'s project through `store`, for a while."""
    with _lock:
        previous = _open.get(store.project)
        _open[store.project] = store
    try:
        yield
    finally:
        with _lock:
            if previous is None:
                _open.pop(store.project, None)
            else:
                _open[store.project] = previous


def store_of(project: str) -> ObjectStore:
    """The store of the session open for `project`; refused when none is."""
    with _lock:
        store = _open.get(project)
    if store is None:
        raise AccessDenied(
            f"the artifacts of project '{project}' are reached in its registry session only"
        )
    return store


def repository(artifact_uri: str, **uris: str | None) -> Any:
    """MLflow's entry point for the scheme: the repository of `artifact_uri`."""
    from safeguards.registry import ProjectArtifactRepository

    return ProjectArtifactRepository(artifact_uri, **uris)

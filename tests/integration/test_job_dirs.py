"""The data directory a project's jobs mount in AWS (HIPAA_MLOPS_JOB_DIRS): the CA bundle
and their own workload credentials, nothing of the operator's, OpenBao's or another
project's; a revoked project's jobs stop logging in. Against the stack's real OpenBao."""

from __future__ import annotations

import json
import shutil
import stat

import hvac
import pytest

from safeguards import keys, openbao
from safeguards.errors import ConfigError, IntegrityError, ServerError
from safeguards.settings import Settings

pytestmark = pytest.mark.integration


def test_a_projects_jobs_hold_the_ca_and_their_own_credentials_only(
    stack: Settings, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    project, other = project_pair
    control_plane = stack.model_copy(update={"job_dirs": True})
    keys.provide_job_dir(operator, control_plane, project)
    job = openbao.job_settings(control_plane, project)
    held = {p.relative_to(job.data_dir).as_posix() for p in job.data_dir.rglob("*") if p.is_file()}
    assert held == {"tls/ca.pem", f"credentials/{keys.identity(project)}.json"}
    assert stat.S_IMODE(job.ca_bundle.stat().st_mode) == 0o644
    creds = openbao.credentials_path(job, keys.identity(project))
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600

    # The job, with only its own directory: its identity logs in, no other does.
    openbao.login(job, keys.identity(project)).auth.token.lookup_self()
    for identity in ("operator", keys.identity(other), keys.ingest_identity(project)):
        with pytest.raises(ConfigError, match="no credentials"):
            openbao.login(job, identity)

    # Provided again (every OpenBao start): the live secret id is kept, not piled up.
    before = json.loads(creds.read_text())["secret_id"]
    keys.provide_job_dir(operator, control_plane, project)
    assert json.loads(creds.read_text())["secret_id"] == before

    # Revoked as `projects suspend` revokes: the jobs' copy stops working too.
    openbao.destroy_secret_ids(operator, control_plane, keys.identity(project))
    with pytest.raises(ServerError, match="refused"):
        openbao.login(job, keys.identity(project))


def test_what_a_compromised_job_plants_in_its_directory_gets_it_nothing(
    stack: Settings, operator: hvac.Client, project_pair: tuple[str, str]
) -> None:
    """The job writes in its own directory; the control plane then works there as the
    operator. A planted credentials file of another identity is never looked at, and a
    planted link is refused, not followed, so no operator secret lands within reach."""
    project, _ = project_pair
    control_plane = stack.model_copy(update={"job_dirs": True})
    operator_file = openbao.credentials_path(control_plane, "operator")
    before = operator_file.read_bytes()
    keys.provide_job_dir(operator, control_plane, project)
    job = openbao.job_settings(control_plane, project)

    decoy = openbao.credentials_path(job, "operator")
    decoy.write_text(json.dumps({"role_id": "guess", "secret_id": "guess"}))
    keys.provide_job_dir(operator, control_plane, project)
    assert json.loads(decoy.read_text()) == {"role_id": "guess", "secret_id": "guess"}

    own = openbao.credentials_path(job, keys.identity(project))
    own.unlink()
    own.symlink_to(operator_file)
    with pytest.raises(IntegrityError, match="link or an odd file"):
        keys.provide_job_dir(operator, control_plane, project)
    own.unlink()

    shutil.rmtree(job.ca_bundle.parent)
    job.ca_bundle.parent.symlink_to(operator_file.parent, target_is_directory=True)
    with pytest.raises(IntegrityError, match="link or an odd file"):
        keys.provide_job_dir(operator, control_plane, project)
    assert not (operator_file.parent / "ca.pem").exists()
    assert operator_file.read_bytes() == before
    assert stat.S_IMODE(operator_file.stat().st_mode) == 0o600

"""Dataset versions with DVC, the remote in the object store, every file sealed.

Each project has a dataset repository (git + DVC) under the data directory. A version is
one git commit holding, per dataset, the DVC pointer of its sealed Parquet file and a
metadata file: content hash (SHA-256 of the plaintext Parquet), row count, schema, and
the evidence report's id. The Parquet file is sealed (envelope encryption under the
project key) before DVC sees it, so neither DVC's cache nor its remote holds plaintext;
on the stack the remote is the project's `deidentified` bucket with SSE-KMS on top.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import hvac
import pandas as pd

from safeguards import credentials, envelope, keys, objectstore, residency
from safeguards.errors import ConfigError, GateRefused, IntegrityError, NotFound, ServerError
from safeguards.settings import Settings
from sandbox.deidentify import evidence_html

# DVC reports usage and checks for updates over the internet by default, and botocore
# looks for credentials at the cloud metadata address: none of that may leave this host.
_QUIET = {"DVC_NO_ANALYTICS": "1", "DVC_STUDIO_OFFLINE": "1", "AWS_EC2_METADATA_DISABLED": "true"}
_GIT_ID = ["-c", "user.name=hipaa-mlops", "-c", "user.email=pipeline@hipaa-mlops.invalid"]


def to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def from_parquet(data: bytes) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(data))
    except (OSError, ValueError) as exc:
        raise IntegrityError("not a readable Parquet file") from exc


class DatasetRepo:
    """The DVC repository of one project's datasets, used by its data steward, or read by
    its workload (``role="workload"``), each with its own S3 identity on the stack."""

    def __init__(
        self, settings: Settings, project: str, bao: hvac.Client, role: str = "ingest"
    ) -> None:
        self.settings = settings
        self.project = keys.validate_project(project)
        self.bao = bao
        self.role = role
        self.root = settings.data_dir / "datasets" / project
        # Its remote is in the lake of the region the project's data is reached in.
        self.region = residency.region_for(settings, bao, project)

    def _run(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            list(args),
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
            env={**os.environ, **_QUIET, **(env or {})},
            # Git and DVC create files by the umask: none of them may be seen by others.
            umask=0o077,
        )
        if result.returncode != 0:
            # The output names files and commands, never data values.
            raise ServerError(f"{args[0]} {args[1]} failed: {result.stderr.strip()[-400:]}")
        return result.stdout

    def _git(self, *args: str) -> str:
        return self._run("git", *_GIT_ID, *args)

    def _dvc(self, *args: str) -> str:
        return self._run(str(Path(sys.executable).with_name("dvc")), *args, env=self._s3_env)

    def _remote_keys(self) -> dict[str, str] | None:
        """The same keys as DVC remote options, for DVC's in-process API."""
        env = self._s3_env
        if not env:
            return None
        return {
            "access_key_id": env["AWS_ACCESS_KEY_ID"],
            "secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        }

    @functools.cached_property
    def _s3_env(self) -> dict[str, str]:
        """The role's S3 keys for DVC's remote, read from OpenBao once per repository
        object and handed to DVC in its environment: never written to its config files."""
        if self.settings.profile == "sandbox" or self.settings.lake == "s3":
            return {}  # S3's credentials: the AWS default chain (the task's role)
        path = objectstore.s3_credentials_path(self.project, self.role)
        creds = credentials.require(
            credentials.read(self.bao, path), path, "access_key", "secret_key"
        )
        return {
            "AWS_ACCESS_KEY_ID": creds["access_key"],
            "AWS_SECRET_ACCESS_KEY": creds["secret_key"],
        }

    def init(self) -> None:
        if (self.root / ".dvc").is_dir():
            return
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._git("init", "-q", "-b", "main")
        self._dvc("init", "-q")
        self._dvc("config", "core.analytics", "false")
        self._dvc("config", "core.check_update", "false")
        if self.settings.profile == "sandbox":
            self._dvc("remote", "add", "-d", "lake", str(self._local_remote))
        elif self.settings.lake == "s3":
            lake = objectstore.AwsObjectStore(self.settings, self.project, self.region)
            self._dvc("remote", "add", "-d", "lake", f"s3://{lake.bucket('deidentified')}/dvc")
            for key, value in (
                ("region", lake.aws_region),
                ("sse", "aws:kms"),
                ("sse_kms_key_id", lake.kms_key("deidentified")),
            ):
                self._dvc("remote", "modify", "lake", key, value)
        else:
            bucket = objectstore.bucket_name(self.project, "deidentified")
            self._dvc("remote", "add", "-d", "lake", f"s3://{bucket}/dvc")
            for key, value in (
                ("endpointurl", self.settings.lake_url(self.region)),
                ("ssl_verify", str(self.settings.ca_bundle)),
                ("sse", "aws:kms"),
                ("sse_kms_key_id", keys.key_name(self.project, self.region)),
            ):
                self._dvc("remote", "modify", "lake", key, value)
        self._git("add", ".dvc", ".dvcignore")
        self._git("commit", "-q", "-m", "dataset repository")

    def commit(
        self,
        name: str,
        frame: pd.DataFrame,
        zone: str,
        evidence: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Version `frame` as dataset `name`; returns its metadata, revision included."""
        objectstore.validate_key(name)
        if zone == "deidentified" and evidence is None:
            raise ConfigError("a dataset enters the deidentified zone only with its evidence")
        self.init()
        plain = to_parquet(frame)
        meta: dict[str, Any] = {
            "name": name,
            "zone": zone,
            "content_hash": "sha256:" + hashlib.sha256(plain).hexdigest(),
            "rows": len(frame),
            "schema": {c: str(t) for c, t in frame.dtypes.items()},
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "evidence_id": None,
            **(extra or {}),
        }
        files = [f"{name}.parquet.sealed.dvc", f"{name}.meta.json", ".gitignore"]
        if evidence is not None:
            evidence = {**evidence, "dataset": {"name": name, "content_hash": meta["content_hash"]}}
            body = json.dumps(evidence, indent=1, sort_keys=True).encode()
            meta["evidence_id"] = "sha256:" + hashlib.sha256(body).hexdigest()
            (self.root / f"{name}.evidence.json").write_bytes(body)
            (self.root / f"{name}.evidence.html").write_text(evidence_html(evidence))
            files += [f"{name}.evidence.json", f"{name}.evidence.html"]
        sealed = envelope.seal(
            self.bao,
            keys.key_name(self.project, self.region),
            f"{self.region}/{self.project}/datasets/{name}",
            plain,
        )
        (self.root / f"{name}.parquet.sealed").write_bytes(sealed)
        (self.root / f"{name}.meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        self._dvc("add", "-q", f"{name}.parquet.sealed")
        self._git("add", *files)
        self._git("commit", "-q", "-m", f"dataset {name} {meta['content_hash'][:19]}")
        self._dvc("push", "-q")
        self._owner_only()
        meta["revision"] = self._git("rev-parse", "HEAD").strip()
        return meta

    @property
    def _local_remote(self) -> Path:
        """The sandbox's DVC remote: a directory in its lake."""
        return self.settings.data_dir / "lake" / self.region / f"{self.project}-dvc-remote"

    def _owner_only(self) -> None:
        """DVC makes its cache and local remote files read-only for everyone (0444): keep
        them read-only, for their owner alone."""
        for top in (self.root / ".dvc" / "cache", self._local_remote):
            for path in top.rglob("*") if top.is_dir() else ():
                mode = path.lstat().st_mode
                if stat.S_ISREG(mode) and mode & 0o077:
                    path.chmod(stat.S_IMODE(mode) & 0o700)

    def versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every version, newest first, with its metadata."""
        if not (self.root / ".git").is_dir():
            return []
        out = []
        for line in self._git("log", "--format=%H", "--", "*.meta.json").split():
            for path in self._git("show", "--name-only", "--format=", line).split():
                if path.endswith(".meta.json") and (name is None or path == f"{name}.meta.json"):
                    meta = json.loads(self._git("show", f"{line}:{path}"))
                    out.append({**meta, "revision": line})
        return out

    def version(self, name: str, revision: str = "HEAD") -> dict[str, Any]:
        matches = [v for v in self.versions(name) if revision in ("HEAD", v["revision"])]
        if not matches:
            raise NotFound(f"no version of dataset {name} at that revision")
        return matches[0]

    def evidence(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The version's de-identification evidence, checked against its recorded id, its
        dataset's content hash and an empty residual scan; GateRefused if there is none."""
        if meta["zone"] != "deidentified" or not meta.get("evidence_id"):
            raise GateRefused(
                f"dataset {meta['name']} has no de-identification evidence; "
                "only a de-identified version may be used"
            )
        body = self._git("show", f"{meta['revision']}:{meta['name']}.evidence.json").encode()
        if "sha256:" + hashlib.sha256(body).hexdigest() != meta["evidence_id"]:
            raise IntegrityError(f"the evidence of dataset {meta['name']} does not match its id")
        evidence: dict[str, Any] = json.loads(body)
        if evidence["dataset"]["content_hash"] != meta["content_hash"]:
            raise IntegrityError(f"the evidence of dataset {meta['name']} is for other data")
        if any(evidence["residual_scan"].values()):
            raise GateRefused(f"the evidence of dataset {meta['name']} shows residual identifiers")
        return evidence

    def read(self, name: str, revision: str = "HEAD") -> pd.DataFrame:
        """Dataset `name` as of `revision`, checked against its recorded content hash."""
        # Imported here: DVC takes about a second to import, and most commands never read.
        import dvc.api
        from dvc.exceptions import DvcException

        meta = self.version(name, revision)
        try:
            sealed = dvc.api.read(
                f"{name}.parquet.sealed",
                repo=str(self.root),
                rev=meta["revision"],
                mode="rb",
                remote_config=self._remote_keys(),
            )
        except (DvcException, FileNotFoundError) as exc:
            raise NotFound(
                f"dataset {name} could not be fetched from the DVC cache or remote"
            ) from exc
        self._owner_only()
        plain = envelope.open_sealed(
            self.bao, f"{self.region}/{self.project}/datasets/{name}", sealed
        )
        if "sha256:" + hashlib.sha256(plain).hexdigest() != meta["content_hash"]:
            raise IntegrityError(f"dataset {name} does not match its recorded content hash")
        return from_parquet(plain)

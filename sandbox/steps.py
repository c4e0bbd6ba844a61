"""The DATA stage's steps, each run by the project's data steward (ingestion identity)
and each recorded in the audit log: synthesise, ingest, de-identify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from safeguards import keys, objectstore, openbao
from safeguards.audit import AuditLog
from safeguards.errors import ConfigError, IntegrityError
from safeguards.settings import Settings
from sandbox import deidentify, schema, synth
from sandbox.versions import DatasetRepo, from_parquet, to_parquet

ACTOR = "pipeline:data"


class DataSteward:
    def __init__(self, settings: Settings, project: str) -> None:
        self.settings = settings
        self.project = keys.validate_project(project)
        self.bao = openbao.login(settings, keys.ingest_identity(project))
        self.store = objectstore.open_store(settings, project, role="ingest")
        self.repo = DatasetRepo(settings, project, self.bao)
        self.audit = AuditLog.of(settings, self.bao)

    def synth(
        self, name: str, rows: int, cohort: str = "baseline", seed: int = 0
    ) -> dict[str, Any]:
        """A privacy-gated synthetic PHI-shaped set, versioned in the synthetic zone."""
        frame, privacy = synth.synthesize(rows, cohort, seed)
        meta = self.repo.commit(
            name,
            frame,
            "synthetic",
            extra={"cohort": cohort, "seed": seed, "privacy_gate": privacy},
        )
        self.audit.append(
            ACTOR,
            "data.synth",
            f"dataset/{self.project}/{name}",
            rows=rows,
            cohort=cohort,
            revision=meta["revision"],
        )
        return meta

    def ingest(self, name: str, frame: pd.DataFrame) -> None:
        """Admit a raw (PHI) table into the raw-phi zone, after checking its schema."""
        schema.check(frame, schema.RAW_COLUMNS, "raw")
        self.store.put("raw-phi", f"{name}.parquet", to_parquet(frame))
        self.audit.append(ACTOR, "data.ingest", f"raw-phi/{self.project}/{name}", rows=len(frame))

    def deidentify(self, name: str, source: str) -> dict[str, Any]:
        """De-identify raw table `source` into dataset `name`, with its evidence."""
        raw = from_parquet(self.store.get("raw-phi", f"{source}.parquet"))
        out, evidence = deidentify.deidentify(
            raw, lambda values: keys.pseudonyms(self.bao, self.project, values)
        )
        meta = self.repo.commit(
            name, out, "deidentified", evidence=evidence, extra={"source": f"raw-phi/{source}"}
        )
        self.audit.append(
            ACTOR,
            "data.deidentify",
            f"dataset/{self.project}/{name}",
            rows=len(out),
            revision=meta["revision"],
            evidence_id=meta["evidence_id"],
        )
        return meta


def read_table(path: Path) -> pd.DataFrame:
    """A raw table from a Parquet or CSV file, with a clear error for a bad one."""
    if not path.is_file() or path.stat().st_size == 0:
        raise ConfigError(f"{path.name} is missing or empty")
    try:
        if path.suffix == ".parquet":
            return from_parquet(path.read_bytes())
        if path.suffix == ".csv":
            return pd.read_csv(
                path, parse_dates=["date_of_birth", "admission_date", "discharge_date"]
            )
    except (ValueError, IntegrityError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{path.name} is not a readable table") from exc
    raise ConfigError("a raw table is a .parquet or .csv file")

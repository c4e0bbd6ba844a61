"""The DATA stage's steps, each run by the project's data steward (ingestion identity),
each checked against the project's contract and recorded in the audit log: synthesise,
ingest, de-identify."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hvac
import pandas as pd

import contract as contracts
from safeguards import keys, objectstore, openbao
from safeguards.audit import AuditLog
from safeguards.settings import Settings
from sandbox import deidentify, synth
from sandbox.versions import DatasetRepo, from_parquet, to_parquet

ACTOR = "pipeline:data"


class DataSteward:
    def __init__(self, settings: Settings, project: str, bao: hvac.Client | None = None) -> None:
        self.settings = settings
        self.project = keys.validate_project(project)
        self.bao = bao or openbao.login(settings, keys.ingest_identity(project))
        self.contract = contracts.load(self.bao, project)
        self.store = objectstore.store_with(settings, self.bao, project, "ingest")
        self.repo = DatasetRepo(settings, project, self.bao)
        self.audit = AuditLog.of(settings, self.bao)

    def synth(
        self,
        name: str,
        rows: int,
        cohort: str = "baseline",
        seed: int = 0,
        source: str | None = None,
        revision: str = "HEAD",
        synthesizer: str = "copula",
    ) -> dict[str, Any]:
        """A privacy-gated synthetic PHI-shaped raw table of the project's contract,
        versioned in the synthetic zone: drawn from the contract (the diabetes example
        from its structural model), or a twin of de-identified dataset `source`."""
        if source is None:
            frame, privacy = synth.synthesize(self.contract, rows, cohort, seed, model=synthesizer)
            origin: dict[str, Any] = {"cohort": cohort}
        else:
            meta = self.repo.version(source, revision)
            self.repo.evidence(meta)
            frame, privacy = synth.twin(
                self.repo.read(source, meta["revision"]), self.contract, rows, seed, synthesizer
            )
            origin = {"source": f"{source}@{meta['revision']}"}
        meta = self.repo.commit(
            name,
            frame,
            "synthetic",
            extra={
                **origin,
                "seed": seed,
                "synthesizer": synthesizer,
                "privacy_gate": privacy,
                "contract": self.contract.fingerprint,
            },
        )
        self.audit.append(
            ACTOR,
            "data.synth",
            f"dataset/{self.project}/{name}",
            rows=rows,
            revision=meta["revision"],
            synthesizer=synthesizer,
            **origin,
        )
        return meta

    def ingest(self, name: str, frame: pd.DataFrame) -> int:
        """Admit a raw (PHI) table into the raw-phi zone, after checking it against the
        contract; returns its row count."""
        table, _ = contracts.conform(frame, self.contract.columns, "the raw table")
        self.store.put("raw-phi", f"{name}.parquet", to_parquet(table))
        self.audit.append(ACTOR, "data.ingest", f"raw-phi/{self.project}/{name}", rows=len(table))
        return len(table)

    def ingest_file(self, name: str, path: Path, mapping: Mapping[str, str] | None = None) -> int:
        """Admit a CSV or Parquet file, read with the contract's types, its columns renamed
        by the contract's sources and then by `mapping`."""
        table, _ = contracts.read_table(
            path, self.contract.columns, {**self.contract.sources, **(mapping or {})}
        )
        return self.ingest(name, table)

    def deidentify(self, name: str, source: str) -> dict[str, Any]:
        """De-identify raw table `source` into dataset `name`, with its evidence."""
        raw = from_parquet(self.store.get("raw-phi", f"{source}.parquet"))
        out, evidence = deidentify.deidentify(
            raw,
            self.contract,
            lambda values: keys.pseudonyms(self.bao, self.project, self.store.region, values),
        )
        meta = self.repo.commit(
            name,
            out,
            "deidentified",
            evidence=evidence,
            extra={"source": f"raw-phi/{source}", "contract": self.contract.fingerprint},
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

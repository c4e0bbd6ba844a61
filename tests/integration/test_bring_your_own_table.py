"""A hospital team brings its own table and its own model, as a new user would, through
the command line: a Pima-like diabetes table (532 patients; npreg glu bp skin bmi ped age
type, with a patient id and a ZIP code whose leading zeros matter, and no date at all),
its own contract with source names and a `--map`, its own scikit-learn model; beside it a
second team with the readmission contract. Both projects are served at once, each by its
own endpoint, and neither's key opens the other's. Batch scoring and monitoring work on a
table this small."""

from __future__ import annotations

import io
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import numpy as np
import pandas as pd
import pytest
import requests
import skops.io

import contract as contracts
from model.train import TrainConfig, fit
from pipeline.training import ModelSteward
from safeguards import apikeys, keys, objectstore
from safeguards.settings import Settings
from sandbox import deidentify
from services.supervisor import Supervisor
from tests.canaries import assert_clean
from tests.conftest import HOME, cli, endpoint_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PIMA = """\
# Pima Indians diabetes, as the team's files have it (the MASS package's Pima.tr/te).
name: pima-diabetes
description: Women of Pima heritage, 21 or older, tested for diabetes by WHO criteria.
intended_use: Flags women at high risk of type 2 diabetes for an oral glucose test.
columns:
  patient_id: {role: identifier, type: string, category: mrn, pseudonymize: true, source: PatientID}
  zip: {role: quasi_identifier, type: string, kind: zip, source: ZIP}
  npreg: {role: feature, type: integer, range: [0, 20], description: pregnancies}
  glucose: {role: feature, type: number, unit: mg/dL, range: [40, 250]}
  bp: {role: feature, type: number, unit: mmHg, range: [20, 140], description: diastolic}
  skin: {role: feature, type: number, unit: mm, range: [5, 110], description: triceps skinfold}
  bmi: {role: feature, type: number, unit: kg/m2, range: [15, 70]}
  ped: {role: feature, type: number, range: [0, 3], description: diabetes pedigree function}
  age: {role: feature, type: integer, kind: age, unit: years, range: [21, 90]}
  type: {role: label, type: boolean, meaning: diabetic by WHO criteria}
subgroups:
  - column: age
    bands: [[21, 30], [31, 90]]
"""
OVERRIDE = "the team's own model, validated by its clinical lead; kept pending review"


def pima_table(rows: int = 532, seed: int = 0) -> pd.DataFrame:
    """A table shaped like Pima's, under the team's own column names."""
    rng = np.random.default_rng(seed)
    age = (21 + rng.gamma(2.0, 7.0, rows)).clip(21, 81).round()
    glucose = rng.normal(120, 30, rows).clip(56, 199).round()
    bmi = rng.normal(32.5, 6.5, rows).clip(18.2, 67.1).round(1)
    ped = rng.lognormal(np.log(0.42), 0.6, rows).clip(0.085, 2.42).round(3)
    logit = -8.4 + 0.035 * glucose + 0.09 * bmi + 1.0 * ped + 0.03 * age
    diabetic = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "PatientID": [f"{n:08d}" for n in rng.choice(10**6, rows, replace=False)],
            "ZIP": [f"{z:05d}" for z in rng.integers(500, 99_999, rows)],
            "npreg": rng.poisson(3.5, rows).clip(0, 17),
            "glu": glucose,
            "bp": rng.normal(71, 12, rows).clip(24, 122).round(),
            "skin": rng.normal(29, 10, rows).clip(7, 99).round(),
            "bmi": bmi,
            "ped": ped,
            "age": age.astype(int),
            "type": np.where(diabetic, "Yes", "No"),
        }
    )


@dataclass
class Team:
    project: str
    key: str
    url: str


@dataclass
class Platform:
    settings: Settings
    work: Path
    pima: Team
    readmission: Team

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return cli(self.settings, *args, ok=ok, cwd=self.work)


@pytest.fixture(scope="module")
def platform(
    stack: Settings, operator: hvac.Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """Two teams from their files to a served champion each, through the CLI."""
    work = tmp_path_factory.mktemp("teams")
    tag = uuid.uuid4().hex[:6]
    pima, readmission = f"pima-{tag}", f"readmission-{tag}"
    (work / "pima.yaml").write_text(PIMA)
    pima_table().to_csv(work / "pima.csv", index=False)
    running = Platform(stack, work, Team(pima, "", ""), Team(readmission, "", ""))
    cli = running.cli
    try:
        cli("projects", "create", pima, "--contract", "pima.yaml")
        cli(
            "data",
            "ingest",
            "-p",
            pima,
            "--name",
            "raw",
            "--file",
            "pima.csv",
            "--map",
            "glu=glucose",
        )
        cli("data", "deidentify", "clean", "-p", pima, "--source", "raw")
        cli("model", "train", "-p", pima, "--dataset", "clean", "--algorithm", "gradient-boosting")
        promoted = cli("model", "promote", "1", "-p", pima).stdout
        assert f"project {pima} is served at https://" in promoted

        cli("projects", "create", readmission, "--contract", "readmission")
        cli("data", "synth", "stays", "-p", readmission, "--rows", "4000", "--seed", "3")
        cli("data", "ingest", "-p", readmission, "--name", "raw", "--synthetic", "stays")
        cli("data", "deidentify", "clean", "-p", readmission, "--source", "raw")
        cli("model", "train", "-p", readmission, "--dataset", "clean")
        cli("model", "promote", "1", "-p", readmission)

        for team in (running.pima, running.readmission):
            team.key = apikeys.create(operator, team.project, "clinic")[1]
            team.url = endpoint_url(stack, operator, team.project)
        yield running
    finally:
        supervisor = Supervisor(stack)
        for project in (pima, readmission):
            supervisor.stop(f"serving-{project}")


def test_the_team_contract_reads_their_file_as_it_is(platform: Platform) -> None:
    shown = platform.cli("projects", "show", platform.pima.project).stdout
    assert "patient_id (from PatientID)" in shown and "pseudonym" in shown
    assert "de-identified columns: pseudonym, zip3, age_90_plus, npreg, glucose" in shown
    # Where each zone is, under which key: raw PHI and models each under their own.
    project = platform.pima.project
    assert keys.phi_key_name(project, HOME) in shown
    assert keys.models_key_name(project, HOME) in shown
    steward = ModelSteward(platform.settings, platform.pima.project)
    clean, meta = steward.training_data("clean")
    assert meta["rows"] == 532 and list(clean.columns) == [
        "pseudonym", "zip3", "age_90_plus", "npreg", "glucose", "bp", "skin", "bmi", "ped",
        "age", "type",
    ]  # fmt: skip
    source = pima_table()
    # ZIP codes and ids kept their leading zeros up to de-identification.
    areas = source["ZIP"].str[:3]
    expected = areas.where(~areas.isin(deidentify.RESTRICTED_ZIP3), "000")
    assert clean["zip3"].tolist() == expected.tolist()
    assert clean["zip3"].str.startswith("00").any()
    assert clean["pseudonym"].nunique() == 532
    assert clean["type"].mean() == pytest.approx((source["type"] == "Yes").mean())
    evidence = json.loads(
        (
            platform.settings.data_dir / "datasets" / platform.pima.project / "clean.evidence.json"
        ).read_text()
    )
    categories = {c["category"]: c["action"] for c in evidence["categories"]}
    assert "not collected" in categories["(D) telephone numbers"]
    assert "patient_id: replaced by a keyed pseudonym" in categories["(H) medical record numbers"]


def test_columns_the_contract_does_not_declare_are_refused_without_their_names(
    platform: Platform,
) -> None:
    extra = pima_table(20, seed=1).assign(**{"Patient Name": "Jane Doe"})
    extra.to_csv(platform.work / "extra.csv", index=False)
    refused = platform.cli(
        "data", "ingest", "-p", platform.pima.project, "--name", "extra", "--file", "extra.csv",
        "--map", "glu=glucose", ok=False,
    )  # fmt: skip
    assert "1 column(s) the contract does not declare, at position(s) 11" in refused.stderr
    assert "Patient" not in refused.stderr and "Jane" not in refused.stderr
    assert refused.stderr.strip().count("\n") == 0


def test_the_teams_own_model_is_imported_and_promoted_only_through_the_gate(
    platform: Platform,
) -> None:
    team = platform.pima
    steward = ModelSteward(platform.settings, team.project)
    clean, _ = steward.training_data("clean")
    # Trained elsewhere on labels that got shuffled: it ranks no better than chance.
    shuffled = clean.assign(type=np.random.default_rng(5).permutation(clean["type"].to_numpy()))
    weak = fit(shuffled, steward.contract, TrainConfig())
    skops.io.dump(weak, platform.work / "team.skops")
    imported = platform.cli(
        "model", "import", "team.skops", "-p", team.project, "--dataset", "clean"
    ).stdout
    assert "version 2 (imported, validated on every row of clean)" in " ".join(imported.split())
    refused = platform.cli("model", "promote", "2", "-p", team.project, ok=False)
    assert "beats_champion" in refused.stderr and "rows neither" in refused.stdout
    overridden = platform.cli("model", "promote", "2", "-p", team.project, "--override", OVERRIDE)
    assert "checks overridden: auroc" in overridden.stdout
    assert "beats_champion" in overridden.stdout.split("checks overridden:")[1]
    version = steward.registry.version("2")
    assert version.tags["model.origin"] == "imported" and version.tags["imported_by"]


def test_both_projects_are_served_at_once_each_on_its_own_endpoint(platform: Platform) -> None:
    pima, readmission = platform.pima, platform.readmission
    assert pima.url != readmission.url
    pima_record = {"npreg": 2, "glucose": 148.0, "bp": 72.0, "skin": 35.0, "bmi": 33.6,
                   "ped": 0.627, "age": 50}  # fmt: skip
    ca = str(platform.settings.ca_bundle)

    def post(url: str, body: object, key: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return requests.post(url + "/v1/predict", json=body, headers=headers, verify=ca, timeout=30)

    scored = post(pima.url, pima_record, pima.key)
    assert scored.status_code == 200, scored.text
    readmission_record = contracts.parse(contracts.example("readmission")).example()
    assert post(readmission.url, readmission_record, readmission.key).status_code == 200
    assert post(readmission.url, readmission_record, pima.key).status_code == 403
    assert post(pima.url, pima_record, readmission.key).status_code == 403
    refused = post(pima.url, pima_record | {"patient_id": "00012345"}, pima.key)
    assert refused.status_code == 422 and "00012345" not in refused.text
    for team in (pima, readmission):
        document = requests.get(team.url + "/openapi.json", verify=ca, timeout=10).json()
        contract = ModelSteward(platform.settings, team.project).contract
        assert list(document["components"]["schemas"]["Record"]["properties"]) == contract.features
    status = platform.cli("stack", "status").stdout
    assert f"serving-{pima.project}" in status and f"serving-{readmission.project}" in status


def test_batch_scoring_from_the_cli_and_monitoring_of_a_small_table(platform: Platform) -> None:
    team = platform.pima
    records = pima_table(532, seed=2).drop(columns=["PatientID", "ZIP", "type"])
    records.loc[4, "bmi"] = 99.0  # out of its range
    records.to_csv(platform.work / "to-score.csv", index=False)
    args = ["serving", "score", "to-score.csv", "-p", team.project, "--map", "glu=glucose"]
    refused = platform.cli(*args, "--out", "scores.csv", ok=False)
    assert "row 5, column bmi: outside 15-70" in refused.stderr
    assert not (platform.work / "scores.csv").exists()
    done = platform.cli(*args, "--out", "scores.csv", "--on-invalid", "report").stdout
    assert "531 of 532 rows scored by version 2" in done
    scores = pd.read_csv(platform.work / "scores.csv")
    assert len(scores) == 532 and scores["probability"].isna().tolist() == [
        i == 4 for i in range(532)
    ]
    assert scores.loc[4, "problem"] == "bmi: outside 15-70"
    assert_clean(scores.to_csv())
    assert oct((platform.work / "scores.csv").stat().st_mode)[-3:] == "600"

    monitored = platform.cli("monitor", "run", "-p", team.project, "--no-retrain").stdout
    assert "report:" in monitored, monitored
    store = objectstore.open_store(platform.settings, team.project)
    captured = pd.concat(
        pd.read_parquet(io.BytesIO(store.get("artifacts", n)))
        for n in store.list("artifacts", "capture/")
    )
    assert len(captured) >= 531

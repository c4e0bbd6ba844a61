"""MONITORING at 100k and 1M captured predictions: drift and CBPE against their peers.

One reference, built once as the demo builds it: 20,000 synthetic baseline patients,
de-identified, a model fitted on three quarters of them; the drift reference is every
row, the performance reference the held-out quarter scored by the model. The captured
window is half fresh draws of the same baseline population, then half of the "older"
cohort (fifteen years added to the same seed population), in time order, so drift is
real in the second half. Rows come straight from the copulas `synthesize` samples from,
without identifiers or privacy gate, which makes a million rows cheap; ages over 89 are
90, as in the de-identified training rows. Each has the model's probability, a random
32-hex prediction id and a UTC timestamp, through `analysis_frame` as the worker does.

Cases, each in a fresh process (spawned; it imports only what its case needs), so that
its peak resident memory (the kernel's high-water mark, VmHWM) is its own:

- ours: `monitoring.analysis.analyse`, univariate drift of the twelve features,
  multivariate drift and CBPE; realised performance off (no outcomes reported). Once
  with chunks for about 20 chunks, capped at half the performance reference (`analyse`
  wants two chunks of it: 2,500 rows here, so 40 and 400 chunks; the run says so), and
  once with the worker's default chunk of 500 rows;
- NannyML's univariate drift, DataReconstruction and CBPE, each alone, fitted and
  computed exactly as `analyse` does, with the same chunks: where its time goes;
- the floor: one two-sample Kolmogorov-Smirnov test per numeric feature and one
  chi-square test per categorical feature, whole window against the drift reference,
  scipy and plain pandas, no chunks.

Seconds are the work alone (fitting on the references included; interpreter start,
imports and reading the frames not), the median of `--repeat` processes; "MiB before" is
the peak before the work, mostly imports and frames. The machine is
shared and noisy: single figures move between runs, the ratios to the floor measured in
the same run much less. Read the ratios, not the absolutes.

    python -m bench.monitoring [--rows 100000 1000000] [--repeat N] [--all-chunks]
                               [--json PATH]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

REFERENCE_ROWS = 20_000
TARGET_CHUNKS = 20
DEFAULT_CHUNK = 500  # Settings.monitor_chunk_rows
# Each case's kind and what the table calls it.
KINDS = {
    "floor": "floor: scipy KS / chi-square, whole window",
    "ours": "ours: analyse",
    "univariate": "NannyML univariate drift alone",
    "reconstruction": "NannyML DataReconstruction alone",
    "cbpe": "NannyML CBPE alone",
}
PEERS = ("univariate", "reconstruction", "cbpe")
# Beyond this many chunks a case is skipped unless --all-chunks: 2,000 chunks (500-row
# chunks of a million rows) take under a minute per case here, 20,000 would take ten.
SLOW_CHUNKS = 5_000


@dataclass(frozen=True)
class Case:
    kind: str
    rows: int
    chunk_rows: int | None = None

    @property
    def label(self) -> str:
        chunks = f", {self.chunk_rows:,}-row chunks" if self.chunk_rows else ""
        return KINDS[self.kind] + chunks


@dataclass(frozen=True)
class Measured:
    seconds: float
    start_mib: float
    peak_mib: float
    note: str


def _peak_mib() -> float:
    """This process's peak resident memory. Not `ru_maxrss`: after exec it carries the
    parent's high-water mark, so a spawned child would report the parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- inputs, built once in a child of their own so the parent stays small -------------


def _diabetes() -> Any:
    import contract as contracts

    return contracts.parse(contracts.example("diabetes"))


def _columns() -> tuple[list[str], list[str]]:
    """The diabetes contract's numeric features, and the others (categories, flags)."""
    import contract as contracts

    diabetes = _diabetes()
    numeric = [f for f in diabetes.features if diabetes.column(f).type in contracts.NUMERIC]
    return numeric, [f for f in diabetes.features if f not in numeric]


def _pseudonyms(values: Any) -> dict[str, str]:
    import hashlib

    return {v: hashlib.sha256(v.encode()).hexdigest()[:32] for v in set(values)}


def _captured(model: Any, rows: int, seed: int) -> pd.DataFrame:
    """Captured predictions as the serving endpoint stores them, in time order."""
    import numpy as np
    import pandas as pd

    import contract as contracts
    from sandbox import synth

    diabetes = _diabetes()
    features, label = diabetes.features, diabetes.label
    halves = []
    for i, (cohort, count) in enumerate([("baseline", rows // 2), ("older", rows - rows // 2)]):
        # The population and copula `synthesize(..., seed=0)` uses; fresh draws from it.
        population = synth.seed_population(5000, cohort, seed=0).drop(columns=[label])
        halves.append(synth.GaussianCopula().fit(population).sample(count, seed=seed + i))
    frame = pd.concat(halves, ignore_index=True)[features]
    frame["age"] = frame["age"].clip(upper=90)
    frame["probability"] = model.predict_proba(contracts.model_frame(frame, diabetes))[:, 1]
    rng = np.random.default_rng(seed)
    hexes = rng.bytes(16 * rows).hex()
    frame["prediction_id"] = [hexes[i : i + 32] for i in range(0, 32 * rows, 32)]
    seconds = np.sort(rng.uniform(0, 7 * 86_400, rows))
    frame["predicted_at"] = pd.Timestamp("2025-01-06", tz="UTC") + pd.to_timedelta(
        seconds, unit="s"
    )
    return frame


def prepare(work: Path, sizes: list[int]) -> int:
    """Write the references and one analysis frame per size; returns the held-out rows."""
    from model import train
    from monitoring import analysis
    from safeguards.registry import SklearnScorer
    from sandbox import deidentify, synth

    diabetes = _diabetes()
    raw, _ = synth.synthesize(diabetes, REFERENCE_ROWS, "baseline", seed=0)
    rows, _ = deidentify.deidentify(raw, diabetes, _pseudonyms)
    config = train.TrainConfig()
    train_rows, held_out = train.split(rows, diabetes, config)
    model = train.fit(train_rows, diabetes, config)
    analysis.drift_reference(rows, diabetes).to_parquet(work / "drift_ref.parquet")
    performance = analysis.performance_reference(SklearnScorer(model), held_out, diabetes)
    performance.to_parquet(work / "performance_ref.parquet")
    for size in sizes:
        frame = analysis.analysis_frame(_captured(model, size, seed=100), diabetes)
        frame.to_parquet(work / f"captured-{size}.parquet")
    return len(performance)


# --- the cases, each run in a fresh process -------------------------------------------


def _floor(reference: pd.DataFrame, window: pd.DataFrame) -> str:
    import pandas as pd
    from scipy import stats

    numeric, discrete = _columns()
    p_values = {}
    for column in numeric:
        p_values[column] = stats.ks_2samp(reference[column], window[column]).pvalue
    for column in discrete:
        counts = pd.concat(
            [reference[column].value_counts(), window[column].value_counts()], axis=1
        ).fillna(0)
        p_values[column] = stats.chi2_contingency(counts.to_numpy()).pvalue
    return "p < 0.001: " + ", ".join(sorted(c for c, p in p_values.items() if p < 0.001))


def _ours(drift: pd.DataFrame, performance: pd.DataFrame, window: pd.DataFrame, chunk: int) -> str:
    from monitoring import analysis

    result = analysis.analyse(drift, performance, window, "1", chunk, _diabetes())
    return (
        f"{result.chunks} chunks; drifted: {', '.join(result.drifted_features) or 'none'}; "
        f"multivariate alert {result.multivariate.alert}; "
        f"estimated AUROC {result.estimated_auroc.value:.3f}"
    )


def _peer(
    kind: str, drift: pd.DataFrame, performance: pd.DataFrame, window: pd.DataFrame, chunk: int
) -> str:
    """One of NannyML's calculators alone, configured as `analyse` configures it.
    `run_case` has imported `monitoring.analysis`, which switches NannyML's usage
    statistics off before NannyML is first imported."""
    import nannyml as nml

    from monitoring import analysis

    numeric, discrete = _columns()
    features = [*numeric, *discrete]
    chunker = nml.chunk.SizeBasedChunker(chunk, incomplete="append")
    unlabelled = window.drop(columns=[analysis._TRUE], errors="ignore")
    if kind == "univariate":
        result = (
            nml.UnivariateDriftCalculator(
                column_names=features,
                treat_as_categorical=discrete,
                continuous_methods=[analysis.METHOD],
                categorical_methods=[analysis.METHOD],
                chunker=chunker,
            )
            .fit(drift)
            .calculate(unlabelled)
        )
    elif kind == "reconstruction":
        result = (
            nml.DataReconstructionDriftCalculator(column_names=features, chunker=chunker)
            .fit(drift)
            .calculate(unlabelled)
        )
    else:
        result = (
            nml.CBPE(
                y_pred_proba=analysis._PROBA,
                y_pred=analysis._PRED,
                y_true=analysis._TRUE,
                problem_type="classification_binary",
                metrics=["roc_auc"],
                chunker=chunker,
            )
            .fit(performance)
            .estimate(unlabelled)
        )
    return f"{len(result.filter(period='analysis').to_df())} chunks"


def run_case(case: Case, work: Path) -> Measured:
    """Run one case in this (fresh) process."""
    import warnings

    import pandas as pd

    warnings.filterwarnings("ignore")  # NannyML warns about small reference sets
    window = pd.read_parquet(work / f"captured-{case.rows}.parquet")
    drift = pd.read_parquet(work / "drift_ref.parquet")
    if case.kind == "floor":
        import scipy.stats  # noqa: F401  (imported before the clock starts)

        start_mib, start = _peak_mib(), time.perf_counter()
        note = _floor(drift, window)
        return Measured(time.perf_counter() - start, start_mib, _peak_mib(), note)
    import monitoring.analysis  # noqa: F401  (NannyML, imported before the clock starts)

    performance = pd.read_parquet(work / "performance_ref.parquet")
    assert case.chunk_rows is not None
    start_mib, start = _peak_mib(), time.perf_counter()
    if case.kind == "ours":
        note = _ours(drift, performance, window, case.chunk_rows)
    else:
        note = _peer(case.kind, drift, performance, window, case.chunk_rows)
    return Measured(time.perf_counter() - start, start_mib, _peak_mib(), note)


# --- the run --------------------------------------------------------------------------


def plan(sizes: list[int], held_out: int, most_chunks: int, notes: list[str]) -> list[Case]:
    """Every case per size; the reasons for any departure from ~20 chunks go to `notes`."""
    largest = held_out // 2  # `analyse` wants two chunks of performance reference
    cases: list[Case] = []
    for rows in sizes:
        wanted = rows // TARGET_CHUNKS
        chunk = min(wanted, largest)
        if chunk < wanted:
            notes.append(
                f"{rows:,} rows: ~{TARGET_CHUNKS} chunks would be {wanted:,}-row chunks; "
                f"`analyse` refuses chunks over {largest:,} rows (the performance reference, "
                f"{held_out:,} held-out rows, must hold two), so {chunk:,}-row chunks "
                f"({-(-rows // chunk):,} chunks)."
            )
        chunks = sorted({chunk, DEFAULT_CHUNK}, reverse=True)
        cases.append(Case("floor", rows))
        for size in chunks:
            if rows // size > most_chunks:
                notes.append(
                    f"{rows:,} rows: {size}-row chunks ({rows // size:,}) skipped: "
                    f"over {most_chunks:,} chunks takes minutes per case; "
                    f"pass --all-chunks to measure."
                )
                continue
            cases.extend(Case(kind, rows, size) for kind in ("ours", *PEERS))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--repeat",
        type=int,
        help="Median of this many processes per case (default: 3 up to 100k rows, 1 above).",
    )
    parser.add_argument(
        "--all-chunks",
        action="store_true",
        help=f"Also measure 500-row chunks where they make over {SLOW_CHUNKS:,} chunks.",
    )
    parser.add_argument("--json", type=Path, help="Also write the results to this file.")
    args = parser.parse_args()

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    spawn = multiprocessing.get_context("spawn")
    notes: list[str] = []
    results: dict[Case, Measured] = {}
    began = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with (
        tempfile.TemporaryDirectory(prefix="hipaa-mlops-bench-") as tmp,
        Progress(*columns, console=Console(stderr=True), transient=True) as progress,
    ):
        work = Path(tmp)
        task = progress.add_task("reference and captured frames", total=None)
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
            held_out = pool.submit(prepare, work, sorted(args.rows)).result()
        most_chunks = max(args.rows) if args.all_chunks else SLOW_CHUNKS
        cases = plan(args.rows, held_out, most_chunks, notes)
        repeats = {case: args.repeat or (3 if case.rows <= 100_000 else 1) for case in cases}
        progress.update(task, total=sum(repeats.values()), completed=0)
        for case in cases:
            runs: list[Measured] = []
            for i in range(repeats[case]):
                progress.update(
                    task, description=f"{case.label} at {case.rows:,} ({i + 1}/{repeats[case]})"
                )
                with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
                    runs.append(pool.submit(run_case, case, work).result())
                progress.advance(task)
            results[case] = Measured(
                statistics.median(r.seconds for r in runs),
                statistics.median(r.start_mib for r in runs),
                statistics.median(r.peak_mib for r in runs),
                runs[-1].note,
            )
    lines = [
        "| case | rows | wall s | MiB before | peak MiB | wall / floor | peak / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, measured in results.items():
        floor = results[Case("floor", case.rows)]
        lines.append(
            f"| {case.label} | {case.rows:,} | {measured.seconds:.2f} | "
            f"{measured.start_mib:,.0f} | {measured.peak_mib:,.0f} | "
            f"{measured.seconds / floor.seconds:.1f} | {measured.peak_mib / floor.peak_mib:.2f} |"
        )
    print("\n".join(lines))
    print()
    for case, measured in results.items():
        if case.kind in ("floor", "ours"):
            print(f"{case.label} at {case.rows:,}: {measured.note}")
    for note in notes:
        print(note)
    total = time.perf_counter() - began
    print(f"realised performance off (no outcomes reported); total {total:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "results": [
                        {"case": c.label} | asdict(c) | asdict(m) for c, m in results.items()
                    ],
                    "notes": notes,
                    "total_seconds": total,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()

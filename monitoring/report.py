"""The monitoring report: one self-contained HTML page per run.

A table of what was decided and why, then NannyML's plots of every chunk: drift per
feature, multivariate drift, estimated AUROC and, where outcomes were reported, realised
AUROC. plotly.js is embedded once, so the page opens offline and loads nothing from a
third party. The page holds statistics of chunks and no row.
"""

from __future__ import annotations

import datetime as dt
import html

from monitoring.analysis import DRIFTED_FEATURES, MIN_VERDICT_CHUNKS, Analysis, Signal

_PLOTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("univariate", "Drift of each feature (Jensen-Shannon distance)", {"kind": "drift"}),
    ("multivariate", "Multivariate drift (PCA reconstruction error)", {}),
    ("estimated", "Estimated AUROC without labels (CBPE)", {}),
    ("realised", "Realised AUROC on reported outcomes", {}),
)


def band(signal: Signal) -> str:
    low = "" if signal.lower is None else f"{signal.lower:.4f}"
    high = "" if signal.upper is None else f"{signal.upper:.4f}"
    return f"[{low}, {high}]"


def _row(name: str, signal: Signal) -> str:
    state = "ALERT" if signal.alert else "ok"
    return (
        f"<tr class='{state.lower()}'><td>{html.escape(name)}</td><td>{signal.value:.4f}</td>"
        f"<td>{band(signal)}</td><td>{state}</td></tr>"
    )


def render(project: str, analysis: Analysis, title: str = "Monitoring report") -> bytes:
    verdict = (
        "the population has drifted" if analysis.drifted else "no drift that calls for retraining"
    )
    rows = [_row(name, signal) for name, signal in analysis.signals()]
    figures: list[str] = []
    for key, caption, options in _PLOTS:
        if key in analysis.results:
            figure = analysis.results[key].filter(period="all").plot(**options)
            body = figure.to_html(full_html=False, include_plotlyjs=not figures)
            figures.append(f"<h2>{html.escape(caption)}</h2>{body}")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .25rem .75rem; border: 1px solid #ccc; }}
tr.alert td {{ background: #fde2e1; }}
</style></head><body>
<h1>{html.escape(title)}: project {html.escape(project)}</h1>
<p>Model version {html.escape(analysis.model_version)}; {analysis.rows:,} captured predictions
in {analysis.chunks} chunks; {analysis.labelled_rows:,} with a reported outcome.
Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC.</p>
<p><strong>Verdict: {verdict}.</strong> A feature drifts when it leaves its band in at least
half of the chunks; the population has drifted when {DRIFTED_FEATURES} or more features do,
or all features together do, over at least {MIN_VERDICT_CHUNKS} chunks. Values are the newest
chunk's.</p>
<table><tr><th>statistic</th><th>newest chunk</th><th>band</th><th>state</th></tr>
{"".join(rows)}
</table>
{"".join(figures)}
</body></html>
"""
    return page.encode()

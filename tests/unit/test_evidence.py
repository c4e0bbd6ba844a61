"""The evidence report's static parts: the test suite's JUnit file read for the security
tests and their commit, and the HTML page escaping what it shows."""

from __future__ import annotations

from pathlib import Path

from pipeline import evidence

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<properties><property name="commit" value="0123456789abcdef0123"/></properties>
<testcase classname="tests.integration.test_insiders" name="a"/>
<testcase classname="tests.integration.test_insiders" name="b">{insiders}</testcase>
<testcase classname="tests.unit.test_terraform" name="c"><skipped message="x"/></testcase>
<testcase classname="tests.unit.test_synth" name="d"><failure message="not security"/></testcase>
</testsuite></testsuites>"""


def test_the_security_tests_and_their_commit_are_read_from_the_junit_file(tmp_path: Path) -> None:
    results = tmp_path / "results.xml"
    results.write_text(JUNIT.format(insiders=""))
    check = evidence.check_tests(results)
    assert check.status == evidence.PASS
    assert check.evidence == {"modules": 2, "failed": 0, "commit": "0123456789abcdef0123"}
    assert dict(check.details) == {
        "test_insiders": "2 passed, 0 failed, 0 skipped",
        "test_terraform": "0 passed, 0 failed, 1 skipped",
    }
    results.write_text(JUNIT.format(insiders='<failure message="boom"/>'))
    failed = evidence.check_tests(results)
    assert failed.status == evidence.FAIL and failed.evidence["failed"] == 1
    assert evidence.check_tests(tmp_path / "missing.xml").status == evidence.NA


def test_the_html_report_escapes_what_it_shows_and_maps_every_control() -> None:
    check = evidence.Check(
        "transport", ("164.312(e)(1)",), evidence.FAIL, "<script>x</script>",
        details=(("<b>", "<i>"),),
    )  # fmt: skip
    report = evidence.Report("2026-12-06T00:00:00+00:00", "abc", "sandbox", (check,))
    page = evidence.html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;" in page
    for control in evidence.CONTROLS:
        assert control in page
    assert report.red == [check]


def test_a_series_with_an_identifier_or_an_identifying_columns_name_is_found() -> None:
    clean = {"__name__": "hipaa_mlops_predictions_total", "project": "pima", "status": "ok"}
    assert evidence.metrics_findings([clean], {"zip3", "ssn"}) == 0
    leaked_value = {**clean, "caller": "123-45-6789"}
    leaked_name = {**clean, "zip3": "021"}
    named_metric = {"__name__": "ssn", "project": "pima"}
    found = evidence.metrics_findings(
        [clean, leaked_value, leaked_name, named_metric], {"zip3", "ssn"}
    )
    assert found == 3

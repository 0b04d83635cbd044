"""`pca report`: one self-contained HTML file (and a PDF); bad input exits 2 with one line; a
log that fails verify is still reported, with the failure at the top."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from review_testkit import copy_log, example_log, rows_of, tamper

from pca.app.report import run


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_is_one_self_contained_html_file(
        episode_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    code, stdout, _ = report(capsys, "--db", str(episode_db), "--out", str(out))
    assert code == 0 and "verified" in stdout
    page = out.read_text(encoding="utf-8")
    # nothing fetched from anywhere: no links, scripts, or remote images
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "<script" not in page and "<link" not in page
    assert page.count('src="data:image/png;base64,') == 3
    for title in ("Totals by source", "Prescriptions and changes",
                  "PCA attempts and doses given per hour", "Dose against the rolling limit",
                  "Alarms", "Clinician actions", "Log integrity"):
        assert f"<h2>{title}</h2>" in page
    assert 'class="integrity-ok"' in page and 'class="integrity-failed"' not in page
    rows = rows_of(episode_db)
    requests = [r for r in rows if r["type"] == "pca_request"]
    given = sum(r["outcome"] == "granted" for r in requests)
    assert f"PCA button: {len(requests)} requests, {given} given" in page
    # the wrong PIN and the reprogramming of the episode are in the clinician actions
    assert "wrong PIN" in page and "program refused: not authorised" in page
    assert "re-programmed, no value changed" in page


def test_pdf_for_the_patient_record(
        episode_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    code, stdout, _ = report(capsys, "--db", str(episode_db), "--out", str(out), "--pdf")
    assert code == 0
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and out.exists()
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 5
    assert str(tmp_path / "report.pdf") in stdout


def test_a_log_that_fails_verify_is_reported_with_the_failure_at_the_top(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = copy_log(example_log(tmp_path, "postop_morphine"), tmp_path / "tampered.db")
    tamper(db, "UPDATE events SET data = replace(data, 'denied', 'granted') "
               "WHERE seq = (SELECT min(seq) FROM events WHERE data LIKE '%denied%')")
    out = tmp_path / "report.html"
    code, stdout, stderr = report(capsys, "--db", str(db), "--out", str(out), "--pdf")
    # Written for the reviewer, but the exit status says the log cannot be trusted.
    assert code == 1 and "LOG INTEGRITY CHECK FAILED" in stderr and stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    page = out.read_text(encoding="utf-8")
    body = page.split("<body>", 1)[1].lstrip()
    assert body.startswith('<div class="integrity-failed" id="integrity">LOG INTEGRITY CHECK '
                           "FAILED at seq ")
    assert "edited" in body.split("</div>", 1)[0]
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")


def test_since_and_until_narrow_the_period(
        episode_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "day2.html"
    since, until = "2026-03-03T08:00:00Z", "2026-03-04T08:00:00Z"
    code, _, _ = report(capsys, "--db", str(episode_db), "--out", str(out),
                        "--since", since, "--until", until)
    assert code == 0
    page = out.read_text(encoding="utf-8")
    requests = [r for r in rows_of(episode_db)
                if r["type"] == "pca_request" and since <= r["wall"] < until]
    assert f"PCA button: {len(requests)} requests" in page
    assert "Period reviewed: 2026-03-03 08:00:00 to 2026-03-04 08:00:00 UTC" in page
    # the prescription programmed before the period is shown as the one in force
    assert "in force at the start of the period" in page


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday"], "--since 'yesterday' is not an ISO 8601 time"),
    (["--until", "2026-13-01"], "--until '2026-13-01' is not an ISO 8601 time"),
    (["--since", "2026-03-02T00:00:00Z", "--until", "2026-03-01T00:00:00Z"],
     "is not after --since"),
])
def test_bad_times_exit_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
        message: str) -> None:
    db = example_log(tmp_path, "postop_morphine")
    code, _, err = report(capsys, "--db", str(db), "--out", str(tmp_path / "r.html"), *args)
    assert code == 2
    assert err.startswith("pca report: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_missing_or_corrupt_database_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.db"
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    empty = tmp_path / "other.db"
    import sqlite3

    with sqlite3.connect(empty) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    for db, message in ((missing, "no such file"), (garbage, "not a readable pca event log"),
                        (empty, "not a readable pca event log")):
        code, _, err = report(capsys, "--db", str(db), "--out", str(tmp_path / "r.html"))
        assert code == 2, db
        assert err.startswith("pca report: --db ") and message in err and err.count("\n") == 1
    assert not missing.exists(), "a wrong path must not create a database"
    assert not (tmp_path / "r.html").exists()


def test_unwritable_output_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = example_log(tmp_path, "postop_morphine")
    code, _, err = report(capsys, "--db", str(db), "--out", str(tmp_path / "no" / "r.html"))
    assert code == 2 and "no such directory" in err and err.count("\n") == 1


def test_out_with_pdf_suffix_writes_only_a_pdf(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = example_log(tmp_path, "occlusion")
    code, _, _ = report(capsys, "--db", str(db), "--out", str(tmp_path / "r.pdf"))
    assert code == 0
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    assert not (tmp_path / "r.html").exists()


TWO_PATIENTS = """
name = "two patients on one pump"
start = "2026-03-01T08:00:00Z"
clinician_pin = "482916"
end = "3h"

[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
basal_rate_per_h = 0.5
pca_dose = 1.0
lockout_min = 10
dose_limit = 8.0
dose_limit_window_h = 4
""" + "\n".join(f'[[step]]\nat = "{at}"\ndo = "{do}"\n' for at, do in [
    ("0s", "program"), ("5s", "start"), ("10m", "press"), ("30m", "press"), ("1h", "stop"),
    ("1h1m", "new_patient"), ("1h2m", "program"), ("1h3m", "start"), ("1h30m", "press")])


def test_one_report_never_mixes_two_patients(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from review_testkit import make_log

    db = make_log(tmp_path, TWO_PATIENTS, "two")
    last, first = tmp_path / "last.html", tmp_path / "first.html"
    assert report(capsys, "--db", str(db), "--out", str(last))[0] == 0
    page = last.read_text(encoding="utf-8")
    assert "This log holds 2 patient episodes" in page and "covers episode 2 only" in page
    assert "PCA button: 1 request, 1 given" in page
    assert report(capsys, "--db", str(db), "--out", str(first), "--episode", "1")[0] == 0
    assert "PCA button: 2 requests, 2 given" in first.read_text(encoding="utf-8")
    code, _, err = report(capsys, "--db", str(db), "--out", str(last), "--episode", "3")
    assert code == 2 and "--episode 3: the log holds 2 patient episodes" in err


def test_fhir_subjects_tell_two_patients_apart(tmp_path: Path) -> None:
    import io

    from fhir.resources.R4B.bundle import Bundle
    from review_testkit import make_log

    from pca.app.export_formats import export

    out = io.StringIO()
    export("fhir", rows_of(make_log(tmp_path, TWO_PATIENTS, "two")), out)
    bundle = Bundle.model_validate_json(out.getvalue())
    subjects = {e.resource.subject.identifier.value: 0 for e in bundle.entry
                if e.resource.get_resource_type() == "MedicationAdministration"}
    assert len(subjects) == 2

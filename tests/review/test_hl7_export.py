"""`pca log export --format hl7`: IHE PCD-10 ORU^R42 messages that hl7apy parses, one per
delivery event, each naming the right event and keeping the event's own time.

hl7apy takes tens of milliseconds per message, so these tests use logs of a few hours that
still hold every source and every way a delivery ends, rather than the multi-day episode."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from review_testkit import example_log, make_log, rows_of

from pca.app.export_formats import export
from pca.review.hl7 import KIND_OF_EVENT_NAME, PROFILE, hl7_time, split_messages, write_messages

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
# Three hours with a loading dose, PCA doses (one too early), a clinician bolus, an occlusion
# in the middle of a dose, and a crash in the middle of another.
SHORT = """
name = "every delivery source and ending"
start = "2026-03-02T08:00:00Z"
clinician_pin = "270318"
end = "3h"

[pump]
rtc = true
bolus_rate_ml_h = 60.0

[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
basal_rate_per_h = 0.5
pca_dose = 1.0
lockout_min = 10
max_pca_per_h = 4
dose_limit = 10.0
dose_limit_window_h = 4
loading_dose = 2.0
clinician_bolus_max = 2.0
""" + "\n".join(f'[[step]]\nat = "{at}"\ndo = "{do}"\n{extra}' for at, do, extra in [
    ("0s", "program", ""), ("5s", "start", ""), ("10s", "loading_dose", ""),
    ("15m", "press", ""), ("20m", "press", ""), ("40m", "press", ""),
    ("55m", "clinician_bolus", "amount = 1.0"),
    ("1h10m", "press", ""), ("1h10m30s", "signal", 'name = "occlusion"\nvalue = true'),
    ("1h15m", "signal", 'name = "occlusion"\nvalue = false'), ("1h16m", "clear_alarm", ""),
    ("1h17m", "start", ""), ("1h40m", "press", ""), ("1h40m30s", "crash", ""),
    ("1h45m", "restart", ""), ("1h46m", "start", ""), ("2h10m", "press", "")])


@pytest.fixture(scope="module")
def short_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_log(tmp_path_factory.mktemp("hl7"), SHORT, "short")


@pytest.fixture(scope="module")
def short_messages(short_db: Path) -> list[dict[str, Any]]:
    return parsed(short_db)


def parsed(db: Path) -> list[dict[str, Any]]:
    """Every message parsed back by hl7apy (strict v2.6), reduced to what the tests read."""
    out = io.StringIO()
    n = export("hl7", rows_of(db), out)
    texts = split_messages(out.getvalue())
    assert len(texts) == n
    result = []
    for text in texts:
        msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        msg.validate()
        order = msg.oru_r01_patient_result.oru_r01_order_observation
        obx = {o.obx.obx_3.obx_3_2.to_er7(): o.obx for o in order.oru_r01_observation}
        event = obx["MDC_ATTR_EVT_COND"].obx_5.to_er7().split("^")
        result.append({
            "msh9": msg.msh.msh_9.to_er7(), "msh7": msg.msh.msh_7.to_er7(),
            "id": msg.msh.msh_10.to_er7(), "profile": msg.msh.msh_21.to_er7(),
            "version": msg.msh.msh_12.to_er7(), "time": order.obr.obr_7.to_er7(),
            "obx_time": obx["MDC_ATTR_EVT_COND"].obx_14.to_er7(),
            "kind": KIND_OF_EVENT_NAME[event[1]], "code": event[0],
            "source": obx["MDC_DEV_PUMP_ACTIVE_SOURCES"].obx_5.to_er7().split("-")[-1],
            "total_ml": float(obx["MDC_VOL_FLUID_DELIV_TOTAL"].obx_5.to_er7()),
            "status": obx["MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS"].obx_5.to_er7(),
            "reason": obx["MDC_DEV_PUMP_NOT_DELIVERING_REASON"].obx_5.to_er7()
            if "MDC_DEV_PUMP_NOT_DELIVERING_REASON" in obx else None,
        })
    return result


def expected_dose_events(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(kind, source, wall) of each dose start and end, read straight from the log."""
    out = []
    for row in rows:
        if row["type"] == "dose_started":
            out.append(("start", row["source"], row["wall"]))
        elif row["type"] == "dose_ended":
            kind = "complete" if row["completion"] == "complete" else "stop"
            out.append((kind, row["source"], row["wall"]))
    return out


def test_every_message_parses_and_names_the_right_event(
        short_db: Path, short_messages: list[dict[str, Any]]) -> None:
    messages = short_messages
    rows = rows_of(short_db)
    # the log has every source and every ending the messages must tell apart
    assert {r["source"] for r in rows if r["type"] == "dose_started"} == \
        {"pca", "loading", "clinician"}
    assert {r["completion"] for r in rows if r["type"] == "dose_ended"} >= \
        {"complete", "interrupted"}
    doses = [(m["kind"], m["source"]) for m in messages if m["source"] != "primary"]
    assert doses == [(k, s) for k, s, _ in expected_dose_events(rows)]
    codes = {"start": "197288", "stop": "197290", "complete": "197292"}
    assert all(m["code"] == codes[m["kind"]] for m in messages)
    # the basal channel (primary source) alternates start / stop or complete, like IPEC's model
    primary = [m["kind"] for m in messages if m["source"] == "primary"]
    assert primary and primary[0] == "start"
    for before, after in itertools.pairwise(primary):
        assert (before == "start") != (after == "start")


def test_messages_are_pcd10_oru_r42(short_messages: list[dict[str, Any]]) -> None:
    messages = short_messages
    assert {m["msh9"] for m in messages} == {"ORU^R42^ORU_R01"}
    assert {m["version"] for m in messages} == {"2.6"}
    assert {m["profile"] for m in messages} == {PROFILE}
    assert len({m["id"] for m in messages}) == len(messages)
    assert all(m["obx_time"] == m["time"] for m in messages)


def test_buffered_events_keep_their_original_times(tmp_path: Path) -> None:
    db = example_log(tmp_path, "restart_during_dose")
    rows = rows_of(db)
    out = io.StringIO()
    write_messages(rows, out, now=NOW)
    msgs = [parse_message(t, find_groups=True) for t in split_messages(out.getvalue())]
    created = {m.msh.msh_7.to_er7() for m in msgs}
    assert created == {hl7_time(NOW)}  # made now ...
    times = [m.oru_r01_patient_result.oru_r01_order_observation.obr.obr_7.to_er7() for m in msgs]
    started = [r["wall"] for r in rows if r["type"] == "dose_started"]
    # ... about events of their own time: the dose starts, to the millisecond
    assert times[0] == hl7_time(datetime.fromisoformat(started[0].replace("Z", "+00:00")))
    # the dose cut by the crash stops when the pump died, not when it came back
    restart = next(r for r in rows if r["type"] == "restarted")
    restart_time = hl7_time(datetime.fromisoformat(restart["wall"].replace("Z", "+00:00")))
    assert times[1] < restart_time


def test_interrupted_and_alarm_stops_say_why(short_messages: list[dict[str, Any]]) -> None:
    stopped = [m for m in short_messages if m["kind"] == "stop" and m["source"] == "pca"]
    assert [m["reason"] for m in stopped] == ["^pump-stopped-alarming",
                                              "^pump-stopped-powered-off"]
    assert all(0 < m["total_ml"] < 1.0 for m in stopped)


def test_a_completed_dose_reports_its_volume_and_the_file_reads_back(tmp_path: Path) -> None:
    db = example_log(tmp_path, "postop_morphine")
    path = tmp_path / "events.hl7"
    with open(path, "w", encoding="utf-8", newline="") as out:
        n = export("hl7", rows_of(db), out)
    # read back with universal newlines, as any editor or script would ("\r" becomes "\n")
    texts = split_messages(path.read_text(encoding="utf-8"))
    assert len(texts) == n > 0
    done = []
    for text in texts:
        msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        msg.validate()
        if "MDC_EVT_PUMP_DELIV_COMP" in text:
            done.append(text)
    assert len(done) == 3
    for text in done:
        assert "MDC_VOL_FLUID_DELIV_TOTAL^MDC|1.1.2.7|1.5|" in text
        assert "^pump-delivery-status-transitioning" in text


def test_kvo_after_the_limit_is_its_own_delivery() -> None:
    """Contract rows written out by hand: basal, the limit reached (KVO), basal again."""
    rx = {"drug": "morphine", "drug_unit": "mg", "dose_unit": "mg", "concentration_per_ml": 1.0,
          "basal_rate_per_h": 2.0, "basal_rate_ml_h": 2.0, "dose_limit": 3.0,
          "dose_limit_ml": 3.0, "dose_limit_window_h": 1, "pca_dose": 1.0, "lockout_min": 6}
    script: list[tuple[float, str, dict[str, Any]]] = [
        (0, "prescription_activated", rx),
        (5, "state_changed", {"from": "stopped", "to": "running"}),
        (5, "rate_changed", {"mode": "basal", "rate_ml_h": 2.0}),
        (600, "delivery", {"source": "basal", "ml": 0.3, "steps": 0, "granted_steps": 0}),
        (600, "state_changed", {"from": "running", "to": "kvo"}),
        (600, "rate_changed", {"mode": "kvo", "rate_ml_h": 0.1}),
        (1800, "delivery", {"source": "kvo", "ml": 0.03, "steps": 0, "granted_steps": 0}),
        (1800, "state_changed", {"from": "kvo", "to": "running"}),
        (1800, "rate_changed", {"mode": "basal", "rate_ml_h": 2.0}),
        (2400, "delivery", {"source": "basal", "ml": 0.3, "steps": 0, "granted_steps": 0}),
    ]
    start = datetime(2026, 3, 4, 20, 0, tzinfo=UTC).timestamp()
    rows = [{"seq": i + 1, "t_s": t, "actor": "system", "type": kind,
             "wall": datetime.fromtimestamp(start + t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
             **fields} for i, (t, kind, fields) in enumerate(script)]
    out = io.StringIO()
    write_messages(rows, out, now=NOW)
    texts = split_messages(out.getvalue())
    status = [t.split("MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS^MDC|1.1.2.1|^")[1].split("|")[0]
              for t in texts]
    assert status == ["pump-delivery-status-delivering", "pump-delivery-status-transitioning",
                      "pump-delivery-status-kvo", "pump-delivery-status-transitioning",
                      "pump-delivery-status-delivering"]
    assert "|0.1|265266^MDC_DIM_MILLI_L_PER_HR" in texts[2]

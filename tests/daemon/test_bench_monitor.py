"""`pca bench monitor` runs end to end (a tiny run) and prints its figures against a baseline."""

from __future__ import annotations

import json
from pathlib import Path

from pca.app import bench_monitor


def test_bench_monitor_quick_writes_its_figures(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert bench_monitor.run(["--hours", "0.02", "--realtime-s", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    for key in ("control_loop_baseline_cpu_s_per_h", "control_loop_with_monitor_cpu_s_per_h",
                "monitor_cpu_s_per_h", "percent_of_one_core"):
        assert isinstance(figures[key], float | int)
    # The emulated patient stays inside the limits: the monitored pump kept running, and the
    # serial reader decoded every packet it was sent.
    assert figures["monitor_run_state_alarms"] == ["running", []]
    assert figures["vitals_events_per_h"] > 0
    sent, decoded = figures["serial_reader_realtime_packets"].split("/")
    assert sent == decoded
    assert "percent_of_one_core" in capsys.readouterr().out

"""`pca bench stepgen` runs end to end and writes the JSON the issue asks for (tiny runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pca.app import bench_stepgen

FIELDS = {"variant", "load", "rate_hz", "p50_us", "p99_us", "p999_us", "max_us", "early_edges",
          "step_error", "min_pulse_us", "min_dir_setup_us", "cpu_pct"}


def test_bench_writes_every_variant_load_and_rate(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    code = bench_stepgen.run(["--seconds", "0.04", "--variant", "native",
                              "--variant", "python-busy", "--json", str(out)])
    assert code == 0
    runs = json.loads(out.read_text())["runs"]
    stepped = [r for r in runs if r["variant"] not in ("floor", "cyclictest")]
    assert {(r["variant"], r["load"], r["rate_hz"]) for r in stepped} == {
        (v, load, rate) for v in ("native", "python-busy")
        for load in ("idle", "python-thread", "sqlite") for rate in (258, 43, 1000)}
    for r in runs:
        assert set(r) >= FIELDS
    for r in stepped:
        # Counts and edge order are exact whatever the machine's load; speed is not asserted.
        assert r["step_error"] == 0 and r["early_edges"] == 0
        assert r["min_pulse_us"] >= 2 and r["min_dir_setup_us"] >= 1


def test_bench_rejects_an_unknown_variant() -> None:
    with pytest.raises(SystemExit):
        bench_stepgen.run(["--variant", "nope"])


def test_expected_lateness_is_floor_minus_spin_through_the_no_burst_rule() -> None:
    period = 1_000_000_000 // 250  # 4 ms at 250/s; catch-up steps 2 ms apart
    floor = [50_000, 120_000, 0, 10_000_000, 0, 0, 0, 0, 0, 0]
    late = bench_stepgen.expected_lateness(floor, 100_000, 250)
    assert late[:3] == [0, 20_000, 0]
    # Woken 10 ms late: 9.9 ms behind, then each catch-up step 2 ms closer (half a period).
    assert late[3] == 9_900_000
    assert late[4:8] == [9_900_000 - k * period // 2 for k in range(1, 5)]
    assert late[8:] == [0, 0]  # back on the schedule


def test_quick_says_its_tails_mean_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_stepgen.run(["--quick", "--variant", "native", "--load", "idle",
                              "--rate", "1000"]) == 0
    out = capsys.readouterr().out
    assert "NOT meaningful" in out and "not judged" in out


def test_pinned_run_steps_on_that_cpu_and_isolation_is_undone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from pca.app import bench_stepgen_runs as runs

    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("needs two CPUs")
    cpu = max(before)
    try:
        with open(runs.CPUSET_BALANCE, encoding="ascii") as f:
            balance = f.read()
    except OSError:
        balance = None
    out = tmp_path / "bench.json"
    assert bench_stepgen.run(["--seconds", "0.04", "--variant", "native", "--load", "idle",
                              "--rate", "1000", "--isolate", "--json", str(out)]) == 0
    assert f"CPU {cpu} kept for the stepping thread" in capsys.readouterr().out
    native = [r for r in json.loads(out.read_text())["runs"] if r["variant"] == "native"]
    assert native and f"pulse+probe on CPU {cpu}" in native[0]["note"]
    assert os.sched_getaffinity(0) == before  # the process is given its CPUs back
    if balance is not None:
        with open(runs.CPUSET_BALANCE, encoding="ascii") as f:
            assert f.read() == balance  # and the scheduler its load balancing


def test_bench_refuses_a_cpu_it_may_not_use() -> None:
    with pytest.raises(SystemExit):
        bench_stepgen.run(["--cpu", "1000"])

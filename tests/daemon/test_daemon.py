"""`pca run --sim` under a fake systemd: readiness, watchdog, status, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def start(tmp_path: Path, *extra_env: tuple[str, str]) -> tuple[subprocess.Popen[str],
                                                                  socket.socket]:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000",
               PCA_TEST_HOOKS="1")
    env.update(dict(extra_env))
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "pca.app.cli", "run", "--sim", "--db",
                             str(tmp_path / "events.db")], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, sock


def messages(sock: socket.socket, seconds: float) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            continue
        for line in data.splitlines():
            out.append((time.monotonic(), line))
    return out


def test_ready_watchdog_stopping_and_exit_0_on_sigterm(tmp_path: Path) -> None:
    proc, sock = start(tmp_path)
    try:
        got = messages(sock, 20)
        lines = [m for _, m in got]
        assert "READY=1" in lines, lines[:5]
        pings = [t for t, m in got if m == "WATCHDOG=1"]
        assert len(pings) >= 5  # every WATCHDOG_USEC/2 = 0.2 s from a healthy loop
        assert any(m.startswith("STATUS=state=") for m in lines)
        proc.send_signal(signal.SIGTERM)
        after = [m for _, m in messages(sock, 5)]
        assert proc.wait(timeout=20) == 0
        assert "STOPPING=1" in after
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    from pca.store.eventlog import export_rows

    kinds = [e["type"] for e in export_rows(tmp_path / "events.db")]
    assert kinds[-1] == "shutdown"


def test_hung_control_loop_stops_the_watchdog_pings(tmp_path: Path) -> None:
    proc, sock = start(tmp_path)
    try:
        before = messages(sock, 15)
        assert sum(m == "WATCHDOG=1" for _, m in before) >= 3
        proc.send_signal(signal.SIGUSR1)  # test hook: the loop stops ticking
        # A ping the loop was already sending when the hook arrived, or one still queued in
        # the socket, is not a ping from a hung loop: drain them. The sleeping loop wakes at
        # least once a second, so after 1.5 s it has seen the hook.
        messages(sock, 1.5)
        after = messages(sock, 2)
        assert not any(m == "WATCHDOG=1" for _, m in after)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        sock.close()


@pytest.mark.parametrize("text", ["tick_ms = 5", "colour = 1", "[motor]\nbudget_ml = -1",
                                  "[motor]\npulse_cpu = -1", "[motor]\npulse_cpu = 1.5"])
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "pca.toml"
    cfg.write_text(text + "\n")
    proc = subprocess.run([sys.executable, "-m", "pca.app.cli", "run", "--sim", "--config",
                           str(cfg)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert str(cfg) in proc.stderr


def test_self_test_failure_refuses_delivery_and_says_what_to_do(tmp_path: Path) -> None:
    from pca.app.config import Config
    from pca.app.daemon import wire

    w = wire(Config(), sim=True, db=tmp_path / "events.db")
    with w.stack:
        assert any("pca pin set" in p for p in w.problems)
        assert "self_test_failed" in w.pump.alarms.active
        assert w.pump.alarms.has_high()


def test_a_pulse_cpu_that_is_not_there_refuses_delivery_naming_it(tmp_path: Path) -> None:
    from dataclasses import replace

    from pca.app.config import Config, MotorConfig
    from pca.app.daemon import wire

    w = wire(replace(Config(), motor=MotorConfig(pulse_cpu=1000)), sim=True,
             db=tmp_path / "events.db")
    with w.stack:
        assert any("pulse generator" in p and "CPU 1000" in p for p in w.problems), w.problems
        assert "self_test_failed" in w.pump.alarms.active


def test_unopenable_database_gives_log_failure_and_no_delivery(tmp_path: Path) -> None:
    from pca.app.config import Config
    from pca.app.daemon import wire

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    w = wire(Config(), sim=True, db=blocker / "events.db")
    with w.stack:
        w.pump.tick()
        assert "log_failure" in w.pump.alarms.active
        assert w.pump.seg is None

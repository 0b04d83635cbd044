"""`pca hw selftest` on gpio-sim chips laid out like each Pi, the test playing the technician."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pibench import Bench, as_pi, fake_cpuinfo, pump_env
from simkit import SimChip

from pca.app.hw_selftest import INSTRUCTIONS, OUTPUT_QUESTIONS
from pca.hw.pinmap import load_pinmap

REPO = Path(__file__).resolve().parents[3]
PINOUT = REPO / "hardware" / "pinout.toml"
PINMAP = load_pinmap(PINOUT)
KEY_PROMPT = re.compile(r"-> Press and release key (\S)\.")


class BenchTechnician:
    """Reads the selftest's instructions and questions, acts on the chip, answers from it."""

    def __init__(self, proc: subprocess.Popen[bytes], bench: Bench) -> None:
        self.proc = proc
        self.bench = bench
        self.text = ""
        self.actions = {text: (name, i == 0) for name, pair in INSTRUCTIONS.items()
                        for i, text in enumerate(pair)}
        self.questions = {q: name for name, q in OUTPUT_QUESTIONS.items()}

    def answer(self, reply: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(reply.encode() + b"\n")
        self.proc.stdin.flush()

    def serve(self) -> None:
        assert self.proc.stdout is not None
        pending = ""
        while True:
            chunk = os.read(self.proc.stdout.fileno(), 4096).decode()
            if not chunk:
                return
            self.text += chunk
            pending += chunk
            while True:
                line, sep, rest = pending.partition("\n")
                if sep:
                    self.on_line(line)
                    pending = rest
                    continue
                if pending.endswith("Press Enter when ready. "):
                    self.bench.at_rest()
                    self.answer("")
                    pending = ""
                elif pending.endswith("[y/n] "):
                    question = pending.strip()[: -len("[y/n]")].strip()
                    name = self.questions[question]
                    self.answer("y" if self.bench.output_seen(name) else "n")
                    pending = ""
                break

    def on_line(self, line: str) -> None:
        text = line.strip()
        if text.startswith("-> ") and text[3:] in self.actions:
            name, active = self.actions[text[3:]]
            self.bench.actuate(name, active)
        elif m := KEY_PROMPT.search(text):
            key = m.group(1)
            self.bench.press(key)
            # A finger lifts by itself; held long enough for the debounce even when this
            # machine is loaded (the guest clock is real time, its instructions are not).
            threading.Timer(1.0, self.bench.press).start()


def selftest(chip: SimChip, tmp: Path, timeout_s: float = 300) -> tuple[int, str]:
    argv = [sys.executable, "-m", "pca.app.cli", "hw", "selftest", "--pinout", str(PINOUT),
            "--pin-factory", "lgpio", "--timeout-s", "10"]
    proc = subprocess.Popen(as_pi(fake_cpuinfo(tmp, chip.layout.revision), argv), cwd=tmp,
                            env=pump_env(tmp), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    bench = Bench(chip, PINMAP)
    bench.start_keypad()
    tech = BenchTechnician(proc, bench)
    server = threading.Thread(target=tech.serve, daemon=True)
    server.start()
    try:
        rc = proc.wait(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.join(timeout=10)
        bench.stop()
    return rc, tech.text


@pytest.mark.parametrize("board", ["pi3", "pi4", "pi5"])
def test_selftest_passes_on_each_pi_layout(board: str, make_chip: Callable[..., SimChip],
                                           tmp_path: Path) -> None:
    chip = make_chip(board)
    start = time.monotonic()
    rc, out = selftest(chip, tmp_path)
    assert rc == 0, out
    # Every input, the keypad and every output, each named with its pins (an output's PASS
    # follows its question on the same line: the answer typed is not echoed).
    passed = set(re.findall(r"PASS  (\S+) \(", out))
    expected = {"bolus", *PINMAP.sensors, *PINMAP.power, "keypad", *OUTPUT_QUESTIONS}
    assert passed == expected, out
    assert "FAIL" not in out, out
    print(f"\n{board}: selftest passed in {time.monotonic() - start:.1f} s")


def test_selftest_fails_clearly_when_a_pin_is_owned_elsewhere(
        make_chip: Callable[..., SimChip], tmp_path: Path) -> None:
    bolus = PINMAP.bolus_button.pin
    chip = make_chip("pi4", hogs={bolus: "other-owner"})
    rc, out = selftest(chip, tmp_path, timeout_s=120)
    assert rc == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out  # one line, no traceback
    assert f"GPIO{bolus}" in lines[0] and "busy" in lines[0].lower(), out

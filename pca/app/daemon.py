"""`pca run`: the pump daemon — power-on self test, then the real-time control loop.

The control loop (pca.app.sleeploop) ticks the controller on inputs and deadlines
(ControlLoop, every `tick_ms`, is the fixed-tick variant); gpiozero inputs arrive on the
controller's queue from the input poller thread; the native pulse thread makes
the steps. systemd hears READY=1 after the self test, WATCHDOG=1 only from a
healthy control loop, STATUS= with the pump state and STOPPING=1 on shutdown.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pca.app.config import Config, ConfigError, load_config
from pca.app.notify import Notifier
from pca.app.pin import PinToolError, load_pepper
from pca.app.storage_watch import StorageWatchdog
from pca.controller.ports import Event, LogWriteError, StoredEvent
from pca.controller.pump import Pump
from pca.store.eventlog import LogOpenError, SqliteEventLog
from pca.therapy.drugs import DrugLibrary, LibraryError, default_library, load_pharmacy_library

SIM_DATABASE = Path("pca-sim.db")


class RealClock:
    """CLOCK_MONOTONIC for therapy, the system clock for timestamps."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def wall_ns(self) -> int:
        return time.time_ns()


@dataclass
class UnwritableLog:
    """Stands in for a database that cannot be opened: every flush fails, so the pump
    stays in `log_failure` and never delivers (it never delivers what it cannot log)."""

    reason: str
    pending: list[Event] = field(default_factory=list)

    def append(self, event: Event) -> None:
        if len(self.pending) < 10_000:
            self.pending.append(event)

    def flush(self) -> None:
        raise LogWriteError(self.reason)

    def replay(self) -> Iterable[StoredEvent]:
        return iter(())

    def get_pin_hash(self, role: str) -> str | None:
        return None

    def set_pin_hash(self, role: str, encoded: str) -> None:
        raise LogWriteError(self.reason)


@dataclass
class Wiring:
    """Everything `pca run` builds, so tests and the fault-injection driver reuse it."""

    pump: Pump
    problems: list[str]
    stack: ExitStack
    hardware: Any = None
    motor: Any = None
    log: Any = None
    monitor: Any = None  # the respiratory monitor's reader (pca.hw.nonin), or None
    panel: Any = None  # with --sim: the MockPanel that presses buttons (pca bench power)
    gauge: Any = None  # the fuel gauge (pca.hw.fuel_gauge), or None


def _library(cfg: Config, problems: list[str]) -> DrugLibrary:
    if cfg.drug_library is None:
        return default_library()
    try:  # a pharmacy file must carry its version and checksum
        return load_pharmacy_library(cfg.drug_library.read_text("utf-8"), str(cfg.drug_library))
    except (OSError, LibraryError) as err:
        problems.append(f"drug library {cfg.drug_library}: {err}; fix or replace the file")
        return default_library()


def _open_log(db: Path, log_problems: list[str], *, sim: bool,
              problems: list[str]) -> SqliteEventLog | UnwritableLog:
    """Open the log and run its start-up check (from the last checkpoint, so linear in
    the tail, not the log); a log that fails it is kept and delivery refused."""
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        log = SqliteEventLog(db, provision_keys=sim)
    except (LogOpenError, OSError) as err:
        return UnwritableLog(f"cannot open the event log: {err}; check the disk and "
                             "/var/lib/pca, then restart")
    for problem in log.problems[:3]:
        log_problems.append(f"event log {db} fails verification at {problem}: keep the file "
                            "for review and call service")
    if len(log.problems) > 3:
        log_problems.append(f"event log {db}: {len(log.problems) - 3} more problems "
                            "(`pca log verify` lists them)")
    if log.sealing_problem is not None and not sim:
        problems.append(f"event log is not sealed: {log.sealing_problem}")
    return log


def wire(cfg: Config, *, sim: bool, db: Path | None = None, pinout: Path | None = None,
         library: DrugLibrary | None = None) -> Wiring:
    """Build log, motor, hardware and pump; run the power-on self test (never raises).
    `library` replaces the configured drug library (test drivers)."""
    from pca.hw.hardware import Hardware, build_simulated
    from pca.hw.motor import GpioLines, NativeMotor, PulseTiming
    from pca.hw.pinmap import PinMapError, load_pinmap
    from pca.hw.pins import make_pin_factory

    problems: list[str] = []
    stack = ExitStack()
    database = db or (SIM_DATABASE if sim else cfg.database)
    log_problems: list[str] = []
    log = _open_log(database, log_problems, sim=sim, problems=problems)
    if isinstance(log, SqliteEventLog):
        stack.callback(log.close)
    library = library or _library(cfg, problems)

    class _Sink:  # inputs may arrive before the pump exists; they wait here
        def __init__(self) -> None:
            self.target: Pump | None = None
            self.early: list[Any] = []

        def put(self, item: Any) -> None:
            if self.target is None:
                self.early.append(item)
            else:
                self.target.put(item)

    sink = _Sink()
    hardware = None
    pinmap = None
    panel = None
    try:
        pinmap = load_pinmap(pinout or cfg.pinout)
        if sim:
            hardware, panel = build_simulated(pinmap, sink)
        else:
            factory = make_pin_factory(cfg.pin_factory)
            hardware = Hardware(pinmap, sink, pin_factory=factory)
        stack.callback(hardware.close)
    except (PinMapError, Exception) as err:  # lgpio missing, pins busy, bad map
        problems.append(f"GPIO: {err}")
    motor: Any = None
    try:
        gpio = None if sim or pinmap is None else GpioLines.from_pinmap(
            pinmap.motor)  # type: ignore[arg-type]
        motor = NativeMotor.from_profile(cfg.profile, budget_ml=cfg.motor.budget_ml,
                                         budget_window_s=cfg.motor.budget_window_s,
                                         max_rate_ml_h=cfg.motor.max_rate_ml_h, gpio=gpio,
                                         timing=PulseTiming(cpu=cfg.motor.pulse_cpu))
        stack.callback(motor.close)
        motor.halt(time.monotonic_ns())
        if motor.enabled:
            problems.append("stepper driver ENABLE did not turn off: check the driver wiring")
    except Exception as err:  # the pulse thread could not start
        problems.append(f"pulse generator: {err}")
        from pca.hw.sim_motor import VirtualMotor

        motor = VirtualMotor()  # never commanded: the pump stays in alarm
    annunciator = hardware.annunciator if hardware is not None else _SilentAnnunciator()
    display = _display(cfg, sim, problems)
    stack.callback(display.close)
    monitor, monitor_error = _open_monitor(cfg)
    if monitor is not None:
        stack.callback(monitor.close)
    pepper = None
    if cfg.pepper.exists() and not sim:
        try:
            pepper = load_pepper(cfg.pepper)
        except PinToolError as err:
            problems.append(str(err))
    from pca.app.power import open_gauge

    made: list[Pump] = []  # the simulated pack's load follows the pump once it exists
    gauge, gauge_error = open_gauge(cfg, sim, lambda: bool(made) and made[0].seg is not None)
    if gauge_error is not None:
        problems.append(gauge_error)
    pump = Pump.boot(motor=motor, annunciator=annunciator, log=log, clock=RealClock(),
                     library=library, profile=cfg.profile, credentials=log, display=display,
                     pepper=pepper, monitor=monitor, gauge=gauge)
    made.append(pump)
    problems += _monitor_problems(cfg, pump, monitor_error)
    if not pump.pins.provisioned():
        problems.append("no clinician PIN is provisioned: run `pca pin set` "
                        "(no clinician action is possible until then)")
    for why in log_problems:
        pump.log_unusable(why)
    problems = log_problems + problems
    if problems:
        pump.fail_self_test(problems)
    sink.target = pump
    for item in sink.early:
        pump.put(item)
    return Wiring(pump, problems, stack, hardware, motor, log, monitor, panel, gauge)


def _open_monitor(cfg: Config) -> tuple[Any, str | None]:
    """The configured respiratory monitor, opened once now; (reader, why it did not open).
    The reader keeps trying to open the line after start, so a monitor plugged in later
    is picked up."""
    if cfg.monitor.kind == "none":
        return None, None
    from pca.hw.nonin import NoninOximeter

    oximeter = NoninOximeter(cfg.monitor.port, baudrate=cfg.monitor.baudrate)
    try:
        oximeter.open()
    except Exception as err:  # no such device, permission, pyserial missing
        return oximeter, f"{cfg.monitor.port}: {err}"
    return oximeter, None


def _monitor_problems(cfg: Config, pump: Pump, error: str | None) -> list[str]:
    """SR-13 at power-on: a prescription that requires monitoring needs a monitor."""
    rx = pump.rx
    settings = None if rx is None else rx.request.monitor
    if settings is None or not settings.required:
        return []
    if cfg.monitor.kind == "none":
        return [f"the prescription requires a respiratory monitor, but {cfg.source} has no "
                "[monitor] (kind = \"nonin\", port = ...): configure and connect it"]
    if error is not None:
        return [f"respiratory monitor ({cfg.monitor.kind}) not found at {error}: the "
                "prescription requires monitoring; connect the monitor and its cable"]
    return []


def _display(cfg: Config, sim: bool, problems: list[str]) -> Any:
    from pca.hw.display import open_display

    if sim:
        return open_display("sim")
    d = cfg.display
    try:
        options = {} if d.kind == "none" else {"address": d.address, "port": d.port,
                                                "expander": d.expander}
        return open_display(d.kind, **options)
    except Exception as err:  # no I2C bus, no LCD on it, RPLCD missing
        problems.append(f"display ({d.kind} at I2C {d.address:#x}): {err}")
        return open_display("none")


class _SilentAnnunciator:
    def annunciate(self, priority: Any, silenced: bool, now_ns: int) -> None:
        pass

    def tone(self, kind: Any, now_ns: int) -> None:
        pass


class ControlLoop:
    """Ticks the pump at a fixed period; pings the watchdog only while it is healthy."""

    def __init__(self, wiring: Wiring, tick_ms: int, notifier: Notifier,
                 watcher: Any = None) -> None:
        self.w = wiring
        self.watcher = watcher  # pharmacy files: spool directory and USB stick
        self.period_ns = tick_ms * 1_000_000
        self.notifier = notifier
        self.stop = threading.Event()
        self.hang = threading.Event()  # test hook: simulate a hung loop
        self.ticks = 0
        self.fault: BaseException | None = None  # what a tick raised (then the loop holds)
        self.storage = StorageWatchdog(wiring)

    def status(self) -> str:
        snap = self.w.pump.snapshot()
        alarms = ",".join(snap.alarms) or "none"
        return f"STATUS=state={snap.state} rate_ml_h={snap.rate_ml_h:g} alarms={alarms}"

    def run(self) -> None:
        try:
            self._run()
        except Exception as err:  # never die silently: halt, alarm, hold (issue 17)
            from pca.app.loopguard import hold_after_fault

            self.fault = err
            hold_after_fault(self.w, err, self.stop, self.notifier)

    def _run(self) -> None:
        next_ns = time.monotonic_ns()
        last_ping = 0
        ping_every = (self.notifier.watchdog_ns or 0) // 2
        while not self.stop.is_set():
            if self.hang.is_set():
                time.sleep(0.05)  # the loop is "stuck": no ticks, no pings
                continue
            self.w.pump.tick()
            self.ticks += 1
            self.storage.poll(time.monotonic_ns())
            if self.watcher is not None and self.ticks % 20 == 0:  # about once a second
                for item in self.watcher.poll():
                    self.w.pump.put(item)
            now = time.monotonic_ns()
            if ping_every and now - last_ping >= ping_every:
                self.notifier.send("WATCHDOG=1", self.status())
                last_ping = now
            next_ns += self.period_ns
            if next_ns < now:
                next_ns = now + self.period_ns  # fell behind: never tick in a burst
            self.stop.wait(max(0, next_ns - time.monotonic_ns()) / 1e9)


def run(cfg: Config, *, sim: bool, db: Path | None = None, pinout: Path | None = None,
        ready_file: Path | None = None, fixed_tick: bool = False) -> int:
    notifier = Notifier()
    wiring = wire(cfg, sim=sim, db=db, pinout=pinout)
    from pca.app.rx import RxWatcher

    spool = Path("rx-pending") if sim else cfg.rx_spool
    watcher = RxWatcher([spool, *cfg.rx_watch], consume=[spool])
    from pca.app.power import PowerSupervisor
    from pca.app.sleeploop import SleepingLoop

    loop: ControlLoop | SleepingLoop
    if fixed_tick:
        loop = ControlLoop(wiring, cfg.tick_ms, notifier, watcher)
    else:
        loop = SleepingLoop(wiring, cfg.tick_ms, notifier, watcher)
        loop.power = PowerSupervisor(wiring, wiring.gauge)  # the clean stop at depletion

    def on_term(signum: int, frame: FrameType | None) -> None:
        loop.stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if sim and os.environ.get("PCA_TEST_HOOKS") == "1":
        signal.signal(signal.SIGUSR1, lambda s, f: loop.hang.set())
    with wiring.stack:
        if wiring.hardware is not None:
            wiring.hardware.start(sleep_at_rest=not fixed_tick)
        if wiring.monitor is not None:
            wiring.monitor.start()
        for line in _describe(wiring):
            print(line, flush=True)
        notifier.send("READY=1", loop.status())
        if ready_file is not None:
            ready_file.write_text(str(os.getpid()))
        loop.run()
        powered_down = isinstance(loop, SleepingLoop) and loop.power.reason is not None
        notifier.send("STOPPING=1", "STATUS=stopping: motor halted")
        if not powered_down:  # after a power-down the log is closed and says so already
            wiring.pump.shutdown()
        if wiring.hardware is not None:
            wiring.hardware.stop()
    notifier.close()
    return loop.exit_code if isinstance(loop, SleepingLoop) else 0


def _describe(w: Wiring) -> Iterator[str]:
    yield f"pca run: state {w.pump.state}, database {getattr(w.log, 'path', '(none)')}"
    if w.problems:
        yield "pca run: SELF TEST FAILED: delivery refused until this is fixed:"
        for problem in w.problems:
            yield f"  - {problem}"
    else:
        yield "pca run: self test passed"
    if w.monitor is not None:
        state = "connected" if w.monitor.connected else \
            f"not connected ({w.monitor.last_error or 'opening'}), retrying"
        yield f"pca run: respiratory monitor on {w.monitor.port}: {state}"


def main(args: Any) -> int:
    try:
        cfg = load_config(Path(args.config) if args.config else None)
    except ConfigError as err:
        print(f"pca run: {err}", file=sys.stderr)
        return 2
    return run(cfg, sim=args.sim, db=Path(args.db) if args.db else None,
               pinout=Path(args.pinout) if args.pinout else None)

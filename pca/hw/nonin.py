"""Nonin OEM III pulse oximeter on a serial line (Serial Data Format #2), read with pyserial.

The protocol, as Nonin specifies it for OEM integrators ("OEM III Module Specification
and Technical Information", section "Serial Data Format #2"; the same format is in the
WristOx2 3150 "OEM Specification and Technical Information", 7970-000-xx; see README):

- 9600 baud, 8 data bits, no parity, 1 stop bit; the module sends on its own.
- A *frame* is 5 bytes: START (always 0x01), STATUS, PLETH, a data byte, CHK.
  CHK = (START + STATUS + PLETH + data) mod 256. STATUS bit 7 is always 1.
- 75 frames a second; 25 frames make a *packet* (three packets a second). The first
  frame of a packet has STATUS bit 0 (SYNC) set.
- STATUS bits: 6 SNSD (sensor disconnected or inoperable), 5 ARTF (artifact: a pulse
  beat that did not match the pulse interval), 4 OOT (out of track: no consecutive
  good pulses), 3 SNSA (sensor alarm: the sensor gives unusable data, e.g. no finger),
  2/1 RPRF/GPRF (perfusion, red/green; both set: yellow), 0 SYNC.
- The data byte of frame n (1-based) of a packet: 1 HR MSB (bits 8-7 of the pulse rate
  in bits 1-0), 2 HR LSB (bits 6-0), 3 SpO2, 4 firmware revision, 9 SpO2-D (4-beat
  average for display), 10 SpO2 fast, 11 SpO2 beat-to-beat, 14/15 E-HR MSB/LSB,
  16 E-SpO2, 17 E-SpO2-D, 20/21 HR-D MSB/LSB, 22/23 E-HR-D MSB/LSB; the rest reserved.
  The pulse rate is 9 bits: 511 means "no data". SpO2 is 7 bits: 127 means "no data".

What this adapter does with it, as the specification says:
- A frame whose START is not 0x01, whose STATUS lacks bit 7, or whose CHK is wrong is a
  framing error: the packet it belongs to is dropped and the decoder resynchronises by
  sliding one byte at a time until a valid frame with SYNC set starts a packet again.
- A packet that is cut short (a SYNC frame arrives before 25 frames) is dropped.
- A packet in which any frame has SNSD, ARTF, OOT or SNSA set gives no reading.
- "No data" codes (SpO2 127, HR 511) and values outside the module's ranges (SpO2 0-100 %,
  pulse 18-321 /min) are not readings of that value.
The reported values are the display values, SpO2-D and HR-D (4-beat averages).
Whatever gives no reading simply does not arrive: the controller counts it as stale.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pca.controller.ports import NS_PER_S, VitalsReading

log = logging.getLogger(__name__)

BAUDRATE = 9600
FRAME_BYTES = 5
FRAMES_PER_PACKET = 25
START = 0x01
STATUS_ALWAYS = 0x80
SNSD, ARTF, OOT, SNSA, RPRF, GPRF, SYNC = 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01
UNUSABLE = {"sensor_disconnected": SNSD, "artifact": ARTF, "out_of_track": OOT,
            "sensor_alarm": SNSA}
SPO2_NO_DATA = 127
HR_NO_DATA = 511
SPO2_RANGE = (0, 100)
HR_RANGE = (18, 321)
# 0-based frame index of the values used.
SPO2_D_FRAME = 8
HR_D_MSB_FRAME, HR_D_LSB_FRAME = 19, 20


def checksum(start: int, status: int, pleth: int, data: int) -> int:
    return (start + status + pleth + data) & 0xFF


@dataclass
class DecoderCounts:
    """What the decoder has seen: good frames and packets, and every way one was refused."""

    frames: int = 0
    packets: int = 0
    readings: int = 0
    framing_errors: int = 0  # bad START, STATUS bit 7 clear, or bad CHK
    resync_bytes: int = 0  # bytes skipped while looking for a packet start
    short_packets: int = 0  # a SYNC frame came before 25 frames
    flagged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UNUSABLE, 0))
    no_data: int = 0  # SpO2 127 / HR 511
    out_of_range: int = 0


@dataclass(frozen=True)
class Packet:
    """One complete, checksummed packet: 25 (status, pleth, data) triples."""

    frames: tuple[tuple[int, int, int], ...]

    @property
    def status(self) -> int:
        out = 0
        for status, _pleth, _data in self.frames:
            out |= status
        return out


class NoninDecoder:
    """Bytes in, packets and readings out; pure (no clock, no I/O)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._synced = False
        self._frames: list[tuple[int, int, int]] = []
        self.counts = DecoderCounts()

    def reset(self) -> None:
        """The line was lost: what comes next starts a new packet (the counts stay)."""
        self._buf.clear()
        self._frames.clear()
        self._synced = False

    def feed(self, data: bytes) -> list[dict[str, int]]:
        """Decode what arrived; returns the values of each packet that gives a reading."""
        self._buf += data
        out: list[dict[str, int]] = []
        buf = self._buf
        i = 0
        n = len(buf)
        counts = self.counts
        while n - i >= FRAME_BYTES:
            start, status, pleth, value, chk = buf[i], buf[i + 1], buf[i + 2], buf[i + 3], \
                buf[i + 4]
            valid = start == START and status & STATUS_ALWAYS and \
                chk == (start + status + pleth + value) & 0xFF
            if not self._synced:
                if valid and status & SYNC:
                    self._synced = True
                else:
                    i += 1
                    counts.resync_bytes += 1
                    continue
            elif not valid:
                counts.framing_errors += 1
                self._synced = False
                self._frames.clear()
                i += 1
                counts.resync_bytes += 1
                continue
            counts.frames += 1
            i += FRAME_BYTES
            if status & SYNC and self._frames:
                counts.short_packets += 1
                self._frames.clear()
            self._frames.append((status, pleth, value))
            if len(self._frames) == FRAMES_PER_PACKET:
                packet = Packet(tuple(self._frames))
                self._frames.clear()
                counts.packets += 1
                values = self.values(packet)
                if values:
                    counts.readings += 1
                    out.append(values)
        del buf[:i]
        return out

    def values(self, packet: Packet) -> dict[str, int]:
        """The usable values of a packet ({} when the module flagged it)."""
        status = packet.status
        flagged = [name for name, bit in UNUSABLE.items() if status & bit]
        if flagged:
            for name in flagged:
                self.counts.flagged[name] += 1
            return {}
        frames = packet.frames
        spo2 = frames[SPO2_D_FRAME][2] & 0x7F
        pulse = (frames[HR_D_MSB_FRAME][2] & 0x03) << 7 | frames[HR_D_LSB_FRAME][2] & 0x7F
        out: dict[str, int] = {}
        for key, value, no_data, (low, high) in (("spo2", spo2, SPO2_NO_DATA, SPO2_RANGE),
                                                 ("pulse", pulse, HR_NO_DATA, HR_RANGE)):
            if value == no_data:
                self.counts.no_data += 1
            elif not low <= value <= high:
                self.counts.out_of_range += 1
            else:
                out[key] = value
        return out


def encode_packet(spo2: int | None, pulse: int | None, *, status: int = 0,
                  pleth: Iterable[int] | None = None) -> bytes:
    """One Data Format #2 packet (125 bytes) as the module sends it: for `pca sim`, the
    bench and device tests. None sends the "no data" code."""
    spo2_code = SPO2_NO_DATA if spo2 is None else spo2
    hr = HR_NO_DATA if pulse is None else pulse
    data = [0] * FRAMES_PER_PACKET
    for msb, lsb in ((0, 1), (13, 14), (HR_D_MSB_FRAME, HR_D_LSB_FRAME), (21, 22)):
        data[msb], data[lsb] = (hr >> 7) & 0x03, hr & 0x7F
    for index in (2, SPO2_D_FRAME, 9, 10, 15, 16):
        data[index] = spo2_code & 0x7F
    data[3] = 0x2A  # firmware revision
    waves = list(pleth) if pleth is not None else [128] * FRAMES_PER_PACKET
    out = bytearray()
    for n in range(FRAMES_PER_PACKET):
        st = STATUS_ALWAYS | (status & 0x7E) | (SYNC if n == 0 else 0)
        wave = waves[n] & 0xFF
        out += bytes((START, st, wave, data[n], checksum(START, st, wave, data[n])))
    return bytes(out)


class NoninOximeter:
    """The RespiratoryMonitor port over a serial line: a reader thread decodes, `poll`
    hands over at most one reading per `period_ns` (the first of each period).

    The line may be absent or vanish (a USB adapter pulled out): the thread closes it,
    counts it, and tries to open it again every `reopen_s`, so a monitor plugged in again
    is picked up. `clock` dates readings (monotonic ns); tests inject their own.
    """

    def __init__(self, port: str, *, baudrate: int = BAUDRATE, period_ns: int = NS_PER_S,
                 clock: Callable[[], int] = time.monotonic_ns, reopen_s: float = 1.0,
                 batch_s: float = 0.2, serial_factory: Callable[..., Any] | None = None) -> None:
        self.port = port
        self.baudrate = baudrate
        self.period_ns = period_ns
        self._clock = clock
        self._reopen_s = reopen_s
        self._batch_s = batch_s
        self._serial_factory = serial_factory
        self.decoder = NoninDecoder()
        self._lock = threading.Lock()
        self._ready: deque[VitalsReading] = deque(maxlen=600)
        self._last_kept_ns: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: Any = None
        self.connected = False
        self.line_errors = 0
        self.last_error: str | None = None

    # ---- the port ------------------------------------------------------------------
    def poll(self, now_ns: int) -> Sequence[VitalsReading]:
        with self._lock:
            out = [r for r in self._ready if r.t_ns <= now_ns]
            for _ in out:
                self._ready.popleft()
        return out

    # ---- the line --------------------------------------------------------------------
    def open(self) -> None:
        """Open the line once, now (raises the serial error when it cannot)."""
        factory = self._serial_factory
        if factory is None:
            import serial  # pyserial: imported here so pca.hw imports without it

            factory = serial.Serial
        self._serial = factory(self.port, baudrate=self.baudrate, bytesize=8, parity="N",
                               stopbits=1, timeout=0.5)
        self.connected = True
        self.last_error = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("oximeter reader already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pca-oximeter", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        ser = self._serial
        if ser is not None:
            # Not every port can cancel a read; the read timeout ends it then.
            with contextlib.suppress(Exception):
                ser.cancel_read()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._close_line()

    def __enter__(self) -> NoninOximeter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_line(self) -> None:
        ser, self._serial = self._serial, None
        self.connected = False
        if ser is not None:
            with contextlib.suppress(Exception):  # a vanished device may fail to close
                ser.close()

    def _lost(self, err: Exception) -> None:
        self.line_errors += 1
        self.last_error = f"{self.port}: {err}"
        if self.connected:
            log.warning("oximeter line lost: %s", self.last_error)
        self._close_line()
        self.decoder.reset()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._serial is None:
                try:
                    self.open()
                except Exception as err:
                    self._lost(err)
                    self._stop.wait(self._reopen_s)
                    continue
            try:
                # Whatever is waiting (at least one byte, or the read timeout), then let
                # bytes pile up in the driver's buffer for batch_s: a handful of wake-ups
                # a second instead of one per frame (readings are wanted once a second).
                ser = self._serial
                data = ser.read(ser.in_waiting or 1)
            except Exception as err:  # SerialException/OSError: unplugged
                self._lost(err)
                self._stop.wait(self._reopen_s)
                continue
            if data:
                self.accept(data, self._clock())
                self._stop.wait(self._batch_s)

    def accept(self, data: bytes, t_ns: int) -> None:
        """Decode bytes that arrived at `t_ns` (the reader thread; the bench calls it too)."""
        for values in self.decoder.feed(data):
            if self._last_kept_ns is not None and t_ns - self._last_kept_ns < self.period_ns:
                continue
            self._last_kept_ns = t_ns
            with self._lock:
                self._ready.append(VitalsReading(t_ns, values))

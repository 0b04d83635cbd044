"""A Nonin OEM III module (Serial Data Format #2) on the master side of a real pty pair.

Written from the specification, independently of pca/hw/nonin.py (so a misreading of
the spec in the adapter is not copied here): frames of START 0x01, STATUS (bit 7 set,
SYNC bit 0 on the first of 25), PLETH, one data byte, CHK = sum of the four mod 256.
"""

from __future__ import annotations

import os
import termios
import tty

# Status bits (spec): bit 6 sensor disconnect, 5 artifact, 4 out of track, 3 sensor alarm.
SENSOR_DISCONNECT = 1 << 6
ARTIFACT = 1 << 5
OUT_OF_TRACK = 1 << 4
SENSOR_ALARM = 1 << 3
GREEN_PERFUSION = 1 << 1


def frame(status: int, pleth: int, data: int) -> bytes:
    status |= 0x80
    return bytes([0x01, status, pleth, data, (0x01 + status + pleth + data) % 256])


def packet(spo2: int = 97, hr: int = 72, *, status: int = GREEN_PERFUSION,
           rev: int = 0x2A) -> bytes:
    """25 frames: the data bytes by frame number as the spec tables them (1-based)."""
    by_frame = {
        1: (hr >> 7) & 0b11, 2: hr & 0x7F,         # HR (4-beat, standard)
        3: spo2 & 0x7F, 4: rev,                     # SpO2 (standard), firmware revision
        9: spo2 & 0x7F, 10: spo2 & 0x7F, 11: spo2 & 0x7F,  # SpO2-D, fast, beat-to-beat
        14: (hr >> 7) & 0b11, 15: hr & 0x7F,       # E-HR
        16: spo2 & 0x7F, 17: spo2 & 0x7F,          # E-SpO2, E-SpO2-D
        20: (hr >> 7) & 0b11, 21: hr & 0x7F,       # HR-D
        22: (hr >> 7) & 0b11, 23: hr & 0x7F,       # E-HR-D
    }
    out = b""
    for n in range(1, 26):
        sync = 0x01 if n == 1 else 0x00
        out += frame(status | sync, (n * 9) % 256, by_frame.get(n, 0))
    return out


class NoninEmulator:
    """The module's end of the line: write bytes to the master; the adapter opens `path`."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no line discipline: bytes pass exactly
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.path = os.ttyname(self.slave)
        self.plugged = True

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def unplug(self) -> None:
        """The cable is pulled: the master closes, the adapter's reads fail (EIO)."""
        if self.plugged:
            os.close(self.master)
            os.close(self.slave)
            self.plugged = False

    def close(self) -> None:
        self.unplug()

"""gpio-sim chips for the platform tests: create them in configfs, pull inputs, read outputs."""

from __future__ import annotations

import fcntl
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CONFIGFS = Path("/sys/kernel/config/gpio-sim")


@dataclass(frozen=True)
class Layout:
    """A Pi's header GPIO chip as gpio-sim builds it, and a board revision code gpiozero knows."""

    board: str
    label: str
    num_lines: int
    revision: str  # /proc/cpuinfo "Revision" of that board (gpiozero identifies the Pi by it)


# Labels and line counts of the kernel's own drivers on each Pi (BCM numbers = line offsets).
LAYOUTS = {
    "pi3": Layout("Pi 3 B", "pinctrl-bcm2835", 54, "a02082"),
    "pi4": Layout("Pi 4 B", "pinctrl-bcm2711", 58, "c03111"),
    "pi5": Layout("Pi 5", "pinctrl-rp1", 54, "d04170"),
}

# linux/gpio.h, uapi v2 (sizes fixed by the ABI: 68-byte chip info, 256-byte line info).
_CHIPINFO = struct.Struct("32s32sI")
_LINEINFO = struct.Struct("32s32sIIQ" + "IIQ" * 10 + "4I")
_LINEINFO_CHANGED = struct.Struct(f"{_LINEINFO.size}sQI5I")
assert _CHIPINFO.size == 68 and _LINEINFO.size == 256 and _LINEINFO_CHANGED.size == 288


def _iowr(nr: int, size: int, read_only: bool = False) -> int:
    direction = 2 if read_only else 3  # _IOC_READ (| _IOC_WRITE)
    return (direction << 30) | (size << 16) | (0xB4 << 8) | nr


GPIO_GET_CHIPINFO_IOCTL = _iowr(0x01, _CHIPINFO.size, read_only=True)
GPIO_V2_GET_LINEINFO_IOCTL = _iowr(0x05, _LINEINFO.size)
GPIO_V2_GET_LINEINFO_WATCH_IOCTL = _iowr(0x06, _LINEINFO.size)

FLAG_USED = 1 << 0
FLAG_ACTIVE_LOW = 1 << 1
FLAG_INPUT = 1 << 2
FLAG_OUTPUT = 1 << 3
FLAG_BIAS_PULL_UP = 1 << 8
FLAG_BIAS_PULL_DOWN = 1 << 9
FLAG_BIAS_DISABLED = 1 << 10
CHANGED_REQUESTED, CHANGED_RELEASED, CHANGED_CONFIG = 1, 2, 3


@dataclass(frozen=True)
class LineInfo:
    offset: int
    consumer: str
    flags: int

    @property
    def used(self) -> bool:
        return bool(self.flags & FLAG_USED)


def _line_info(raw: bytes) -> LineInfo:
    fields = _LINEINFO.unpack(raw)
    return LineInfo(offset=fields[2], consumer=fields[1].split(b"\0")[0].decode(),
                    flags=fields[4])


class SimChip:
    """One gpio-sim device with one bank; `hogs` maps offsets to a consumer holding them."""

    def __init__(self, name: str, layout: Layout, hogs: dict[int, str] | None = None) -> None:
        self.layout = layout
        self.dir = CONFIGFS / name
        bank = self.dir / "bank0"
        bank.mkdir(parents=True)
        (bank / "label").write_text(layout.label)
        (bank / "num_lines").write_text(str(layout.num_lines))
        for offset, consumer in (hogs or {}).items():
            hog = bank / f"line{offset}" / "hog"
            hog.mkdir(parents=True)
            (hog / "name").write_text(consumer)
            (hog / "direction").write_text("output-high")
        (self.dir / "live").write_text("1")
        self.chip_name = (bank / "chip_name").read_text().strip()
        self.dev = Path("/dev") / self.chip_name
        self.sysfs = Path("/sys/bus/gpio/devices") / self.chip_name
        deadline = time.monotonic() + 5
        while not self.dev.exists():  # devtmpfs creates the node asynchronously
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.dev} did not appear")
            time.sleep(0.01)

    # ---- the simulated outside world --------------------------------------------------------
    def value(self, offset: int) -> int:
        """The line's level as the chip sees it: an output's driven value, an input's pull."""
        return int((self.sysfs / f"sim_gpio{offset}" / "value").read_text())

    def pull(self, offset: int, level: int) -> None:
        """What is wired to an input: 1 = pulled up (released switch to 3V3), 0 = to ground."""
        (self.sysfs / f"sim_gpio{offset}" / "pull").write_text("pull-up" if level else
                                                                "pull-down")

    # ---- the kernel's view of line ownership --------------------------------------------------
    def info(self, offset: int) -> LineInfo:
        fd = os.open(self.dev, os.O_RDONLY)
        try:
            return _line_info(_ioctl(fd, GPIO_V2_GET_LINEINFO_IOCTL, offset))
        finally:
            os.close(fd)

    def watch(self, offsets: list[int]) -> LineWatch:
        return LineWatch(self.dev, offsets)

    def close(self) -> None:
        (self.dir / "live").write_text("0")
        bank = self.dir / "bank0"
        for line in bank.glob("line*"):
            if (line / "hog").exists():
                (line / "hog").rmdir()
            line.rmdir()
        bank.rmdir()
        self.dir.rmdir()


def _ioctl(fd: int, request: int, offset: int) -> bytes:
    buf = bytearray(_LINEINFO.size)
    struct.pack_into("I", buf, 64, offset)
    fcntl.ioctl(fd, request, buf)
    return bytes(buf)


class LineWatch:
    """Line-info change events (requested / reconfigured / released) for some lines, in order."""

    def __init__(self, dev: Path, offsets: list[int]) -> None:
        self.fd = os.open(dev, os.O_RDONLY | os.O_NONBLOCK)
        for offset in offsets:
            _ioctl(self.fd, GPIO_V2_GET_LINEINFO_WATCH_IOCTL, offset)

    def events(self) -> Iterator[tuple[int, LineInfo]]:
        """(event type, line info at that moment) for every change since the last call."""
        while True:
            try:
                raw = os.read(self.fd, _LINEINFO_CHANGED.size)
            except BlockingIOError:
                return
            info_raw, _ts, kind, *_ = _LINEINFO_CHANGED.unpack(raw)
            yield kind, _line_info(info_raw)

    def close(self) -> None:
        os.close(self.fd)


def chip_label(dev: Path) -> str:
    fd = os.open(dev, os.O_RDONLY)
    try:
        buf = bytearray(_CHIPINFO.size)
        fcntl.ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, buf)
        return bytes(buf[32:64]).split(b"\0")[0].decode()
    finally:
        os.close(fd)

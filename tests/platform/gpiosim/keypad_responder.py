"""The keypad's contacts for a gpio-sim chip, as a real-time process of its own (no GIL shared
with the test): a column reads low while the row of a pressed key in it is being driven.

Usage: keypad_responder.py DEV SYSFS ROWS COLS   (ROWS, COLS: comma-separated offsets)
stdin: one line per change, the pressed keys as "r:c" pairs ("" = none); answers "ok".
A line "?" asks how many row changes (line-info events) it has seen: answers "ok N".
A line "?scans" asks how many whole scans the pump has made since the last change: ones that
began after it (the rows let go of their parking) and ended (every row parked again), so
each has read every row with the keys as they are now. A test holds a key for as many scans
as the pump needs to take it, not for a time: under a loaded host a scan in this guest can
take 200 ms, where one on a Pi takes under a millisecond.
"""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path

from simkit import FLAG_OUTPUT, GPIO_V2_GET_LINEINFO_IOCTL, LineWatch, _ioctl, _line_info


def main() -> None:
    dev, sysfs = Path(sys.argv[1]), Path(sys.argv[2])
    rows = [int(x) for x in sys.argv[3].split(",")]
    cols = [int(x) for x in sys.argv[4].split(",")]
    # Above the pump's threads (its pulse thread is FIFO 50): the column answers as soon as the
    # kernel reports a row driven, before the scanner reads it, as a key's contact would.
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(90))
    pressed: set[tuple[int, int]] = set()
    driven: set[int] = set()
    level: dict[int, int] = {}
    index = {pin: r for r, pin in enumerate(rows)}
    changes = 0
    output = {pin: False for pin in rows}  # as the events say, in order
    in_whole_scan = False  # a scan began after the last change and has not ended yet
    whole_scans = 0

    chip_fd = os.open(dev, os.O_RDONLY)

    def row_driven(pin: int) -> bool:
        info = _line_info(_ioctl(chip_fd, GPIO_V2_GET_LINEINFO_IOCTL, pin))
        return bool(info.used and info.flags & FLAG_OUTPUT)

    def apply() -> None:
        for c, pin in enumerate(cols):
            want = 0 if any((r, c) in pressed for r in driven) else 1
            if level.get(pin) != want:
                (sysfs / f"sim_gpio{pin}" / "pull").write_text("pull-down" if want == 0
                                                              else "pull-up")
                level[pin] = want

    for pin in rows:
        (sysfs / f"sim_gpio{pin}" / "pull").write_text("pull-up")
    watch = LineWatch(dev, rows)
    apply()
    print("ok", flush=True)
    def count(events: object) -> None:
        nonlocal changes, in_whole_scan, whole_scans
        for _kind, info in events:  # type: ignore[attr-defined]
            changes += 1
            if info.offset not in output:
                continue
            was_parked = all(output.values())
            output[info.offset] = bool(info.used and info.flags & FLAG_OUTPUT)
            parked = all(output.values())
            if was_parked and not parked:
                in_whole_scan = True
            elif parked and not was_parked and in_whole_scan:
                in_whole_scan = False
                whole_scans += 1

    poller = select.poll()
    poller.register(watch.fd, select.POLLIN)
    poller.register(sys.stdin.fileno(), select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == watch.fd:
                # The events only wake us: the kernel drops them when its small queue is
                # full, so the rows' state is read back from the chip each time. With no
                # key down no column ever changes, and reading the rows back (four ioctls
                # for each of a scan's 16 row changes, at FIFO 90 on the guest's one vCPU)
                # is skipped: it is most of what this process would cost the pump.
                count(watch.events())
                if not pressed:
                    continue
                driven = {index[pin] for pin in rows if row_driven(pin)}
            else:
                line = sys.stdin.readline()
                if not line:
                    return
                count(watch.events())  # what happened before this line, first
                if line.strip() == "?":
                    print(f"ok {changes}", flush=True)
                    continue
                if line.strip() == "?scans":
                    print(f"ok {whole_scans}", flush=True)
                    continue
                pressed = {(int(a), int(b)) for a, b in
                           (pair.split(":") for pair in line.split())}
                driven = {index[pin] for pin in rows if row_driven(pin)}
                apply()
                in_whole_scan, whole_scans = False, 0
                print("ok", flush=True)
                continue
            apply()


if __name__ == "__main__":
    main()

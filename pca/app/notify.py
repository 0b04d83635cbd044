"""systemd notification (sd_notify) without libsystemd: one datagram per message."""

from __future__ import annotations

import contextlib
import os
import socket


class Notifier:
    """Sends READY=1, WATCHDOG=1, STATUS=..., STOPPING=1 to $NOTIFY_SOCKET when set."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self.address = address or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]  # abstract namespace
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        wanted = usec is not None and (pid is None or pid == str(os.getpid()))
        self.watchdog_ns = int(usec) * 1000 if wanted and usec and usec.isdigit() else None
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> None:
        if self.address is None:
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        with contextlib.suppress(OSError):  # systemd gone or not listening: nothing to tell
            self._sock.sendto("\n".join(lines).encode(), self.address)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

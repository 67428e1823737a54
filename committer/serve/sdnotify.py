"""sd_notify(3) without libsystemd: readiness, status, watchdog and stopping for Type=notify units."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

from committer.core import logs

log = logs.get("committer.sdnotify")

# A blocked datagram socket (systemd not reading) must not stall the daemon's loop for long.
SEND_TIMEOUT = 1.0


def notify_address(value: str) -> bytes | None:
    """The AF_UNIX address in NOTIFY_SOCKET: an absolute path or '@name' (abstract); else None."""
    if value.startswith("@") and len(value) > 1:
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return os.fsencode(value)
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of WATCHDOG_USEC in seconds when the watchdog is meant for `pid`, else None."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if usec <= 0 or (owner and owner != str(pid)):
        return None
    return usec / 2 / 1_000_000


def one_line(text: str) -> str:
    """STATUS= ends at a newline, so a multi-line text is folded into one."""
    return " ".join(text.splitlines()).strip()


class Notifier:
    """sd_notify over $NOTIFY_SOCKET (path or abstract '@name'); every method is a no-op without it."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = notify_address(raw)
        self.enabled: bool = self._address is not None
        # Without a socket nobody listens to the pings, so there is no interval to keep.
        self.watchdog_interval: float | None = (
            watchdog_interval(env, os.getpid()) if self.enabled else None
        )
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._failing = False
        if raw and not self.enabled:
            log.warning("sd_notify_failed", socket=raw, error="unsupported NOTIFY_SOCKET address")

    def ready(self, status: str | None = None) -> None:
        """READY=1: start-up is done (with a STATUS= line and our MAINPID=)."""
        self._send("READY=1", *self._status(status), f"MAINPID={os.getpid()}")

    def status(self, text: str) -> None:
        """STATUS=<one line> shown by systemctl status."""
        self._send(*self._status(text))

    def watchdog(self) -> None:
        """WATCHDOG=1: the pipeline is healthy; call at least every watchdog_interval seconds."""
        self._send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> None:
        """STOPPING=1: shutdown has begun (with a STATUS= line)."""
        self._send("STOPPING=1", *self._status(status))

    def close(self) -> None:
        """Release the socket; later calls are no-ops."""
        with self._lock:
            self._closed = True
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    @staticmethod
    def _status(text: str | None) -> tuple[str, ...]:
        return () if text is None else (f"STATUS={one_line(text)}",)

    def _send(self, *fields: str) -> None:
        if self._address is None:
            return
        message = "\n".join(fields).encode("utf-8", "replace")
        with self._lock:
            if self._closed:
                return
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.settimeout(SEND_TIMEOUT)
                self._sock.sendto(message, self._address)
            except OSError as exc:
                # Once per run of failures: a watchdog ping every few seconds must not flood the log.
                if not self._failing:
                    self._failing = True
                    log.warning("sd_notify_failed", socket=os.fsdecode(self._address).replace("\0", "@", 1),
                                message=fields[0], error=str(exc))
                return
            if self._failing:
                self._failing = False
                log.info("sd_notify_recovered", message=fields[0])

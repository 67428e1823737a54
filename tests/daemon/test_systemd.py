"""systemd: sd_notify on a real datagram socket, the daemon as a Type=notify service, the unit files."""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from committer.core.settings import Settings
from committer.serve import sdnotify
from committer.serve.sdnotify import Notifier
from tests.conftest import ROOT, DaemonProcess, Layout, tree_files, wait_for

Start = Callable[..., DaemonProcess]
UNITS = ROOT / "systemd"
PID = os.getpid()


class Listener:
    """The service manager's end: an AF_UNIX datagram socket bound at a path or an abstract name."""

    def __init__(self, address: str) -> None:
        self.address = address  # as NOTIFY_SOCKET spells it
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)

    def recv(self, timeout: float = 5.0) -> bytes | None:
        """The next datagram, or None when none arrives before the deadline."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            return self.sock.recv(4096)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes: pytest's tmp_path can be longer than that.
    path = Path(tempfile.mkdtemp(prefix="sd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def listener(short_dir: Path) -> Iterator[Listener]:
    sock = Listener(str(short_dir / "notify"))
    yield sock
    sock.close()


def notifier(sock: Listener, **env: str) -> Notifier:
    return Notifier({"NOTIFY_SOCKET": sock.address, **env})


# -- the Notifier against a real socket --------------------------------------------------------


def test_ready_sends_ready_status_and_mainpid_byte_exact(listener: Listener) -> None:
    n = notifier(listener)
    assert n.enabled
    n.ready("watching /app/data")
    assert listener.recv() == f"READY=1\nSTATUS=watching /app/data\nMAINPID={PID}".encode()
    n.ready()
    assert listener.recv() == f"READY=1\nMAINPID={PID}".encode()
    n.close()


def test_status_watchdog_and_stopping_are_byte_exact(listener: Listener) -> None:
    n = notifier(listener)
    n.status("3 commits pending, last push 2 s ago")
    n.watchdog()
    n.stopping()
    n.stopping("pushing before exit")
    assert [listener.recv() for _ in range(4)] == [
        b"STATUS=3 commits pending, last push 2 s ago",
        b"WATCHDOG=1",
        b"STOPPING=1",
        b"STOPPING=1\nSTATUS=pushing before exit",
    ]
    n.close()


def test_status_text_is_folded_into_one_line(listener: Listener) -> None:
    n = notifier(listener)
    n.status("push failed:\nremote: denied\r\n")
    n.stopping("a\nb")
    assert listener.recv() == b"STATUS=push failed: remote: denied"
    assert listener.recv() == b"STOPPING=1\nSTATUS=a b"
    n.close()


def test_an_abstract_namespace_socket_is_reached_through_its_at_name() -> None:
    sock = Listener(f"@committer-test-{uuid.uuid4().hex}")
    try:
        n = notifier(sock)
        n.watchdog()
        n.ready("up")
        assert sock.recv() == b"WATCHDOG=1"
        assert sock.recv() == f"READY=1\nSTATUS=up\nMAINPID={PID}".encode()
        n.close()
    finally:
        sock.close()


def test_the_process_environment_is_the_default(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    n = Notifier()
    assert n.watchdog_interval == 2.0
    n.watchdog()
    assert listener.recv() == b"WATCHDOG=1"
    n.close()


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(PID)}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(PID + 1)}, None),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": ""}, 30.0),
        ({"WATCHDOG_USEC": "500000"}, 0.25),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_PID": str(PID)}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process(
    listener: Listener, env: dict[str, str], interval: float | None
) -> None:
    assert notifier(listener, **env).watchdog_interval == interval


def test_without_notify_socket_every_method_is_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_socket(*_args: object) -> None:
        raise AssertionError("a socket was opened without NOTIFY_SOCKET")

    monkeypatch.setattr(socket, "socket", no_socket)
    with capture_logs() as events:
        for env in ({}, {"NOTIFY_SOCKET": ""}, {"WATCHDOG_USEC": "1000000"}):
            n = Notifier(env)
            assert not n.enabled and n.watchdog_interval is None
            n.ready("x")
            n.status("x")
            n.watchdog()
            n.stopping("x")
            n.close()
    assert events == []


def test_an_unsupported_notify_socket_disables_it_with_one_event() -> None:
    with capture_logs() as events:
        n = Notifier({"NOTIFY_SOCKET": "relative/notify", "WATCHDOG_USEC": "1000000"})
        n.ready()
        n.watchdog()
    assert not n.enabled and n.watchdog_interval is None
    assert [e["event"] for e in events] == ["sd_notify_failed"]


def test_a_vanished_socket_is_logged_once_and_never_raised(listener: Listener) -> None:
    n = notifier(listener)
    n.watchdog()
    assert listener.recv() == b"WATCHDOG=1"
    listener.close()
    with capture_logs() as events:
        n.ready("up")
        n.status("3 commits pending")
        for _ in range(5):
            n.watchdog()
        n.stopping()
    assert [e["event"] for e in events] == ["sd_notify_failed"]
    assert events[0]["message"] == "READY=1" and events[0]["socket"] == listener.address
    assert events[0]["log_level"] == "warning" and events[0]["error"]
    n.close()


def test_a_socket_that_comes_back_is_used_again_and_a_new_failure_is_logged_again(short_dir: Path) -> None:
    path = str(short_dir / "notify")
    n = Notifier({"NOTIFY_SOCKET": path})
    with capture_logs() as events:
        n.watchdog()  # nothing bound there yet
        again = Listener(path)
        n.watchdog()
        assert again.recv() == b"WATCHDOG=1"
        again.close()
        n.watchdog()
        n.watchdog()
    assert [e["event"] for e in events] == ["sd_notify_failed", "sd_notify_recovered", "sd_notify_failed"]
    n.close()


def test_after_close_nothing_is_sent(listener: Listener) -> None:
    n = notifier(listener)
    n.close()
    n.ready()
    n.watchdog()
    n.close()
    # Datagrams queue in the order they were sent: the sentinel comes first only if close() held.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as other:
        other.sendto(b"SENTINEL", listener.address)
    assert listener.recv() == b"SENTINEL"


def test_notify_address_accepts_absolute_paths_and_abstract_names_only() -> None:
    assert sdnotify.notify_address("/run/systemd/notify") == b"/run/systemd/notify"
    assert sdnotify.notify_address("@sd-notify") == b"\0sd-notify"
    assert sdnotify.notify_address("@") is None
    assert sdnotify.notify_address("vsock:2:1234") is None
    assert sdnotify.notify_address("") is None


# -- the daemon as a Type=notify service ------------------------------------------------------


def fields(datagram: bytes) -> dict[str, str]:
    """KEY=VALUE lines of one notification; a malformed line fails the test."""
    out = {}
    for line in datagram.decode().split("\n"):
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_]+", key), f"malformed sd_notify line {line!r} in {datagram!r}"
        out[key] = value
    return out


def await_notification(
    sock: Listener, daemon: DaemonProcess, got: list[bytes], key: str, value: str | None = None,
    timeout: float = 15.0,
) -> dict[str, str] | None:
    """Receive until a datagram carries KEY (=value); every datagram is appended to `got`."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        datagram = sock.recv(min(left, 0.2))
        if datagram is not None:
            got.append(datagram)
            parsed = fields(datagram)
            if key in parsed and (value is None or parsed[key] == value):
                return parsed
        elif daemon.proc.poll() is not None:
            return None  # it exited and nothing is left in the queue
    return None


def expect_wired(daemon: DaemonProcess, got: list[bytes]) -> None:
    """The daemon, once ready, must have said something to systemd."""
    if not got:
        daemon.wait_ready()
        raise AssertionError("the daemon sent no sd_notify datagram at all")


@pytest.fixture
def notify_daemon(layout: Layout, start_daemon: Start, listener: Listener) -> Callable[..., DaemonProcess]:
    def start(**env: str) -> DaemonProcess:
        return start_daemon(env={"NOTIFY_SOCKET": listener.address, **env}, ready=False)

    return start


@pytest.mark.integration
def test_daemon_sends_ready_after_the_first_commit_and_stopping_on_sigterm(
    layout: Layout, notify_daemon: Callable[..., DaemonProcess], listener: Listener
) -> None:
    (layout.data / "before.md").write_text("already here")
    daemon = notify_daemon()
    got: list[bytes] = []
    ready = await_notification(listener, daemon, got, "READY", "1")
    # Checked as soon as READY=1 arrives: the repository and the first reconcile's commit exist.
    committed = tree_files(layout.git_dir)
    expect_wired(daemon, got)
    assert ready is not None, f"no READY=1 within 15 s; got {got}\n{daemon.output()}"
    assert "before.md" in committed, f"READY=1 before the first reconcile was committed: {committed}"
    assert ready.get("MAINPID", str(daemon.proc.pid)) == str(daemon.proc.pid)
    assert daemon.events("daemon_ready")

    daemon.proc.send_signal(signal.SIGTERM)
    stopping = await_notification(listener, daemon, got, "STOPPING", "1")
    assert stopping is not None, f"no STOPPING=1 after SIGTERM; got {got}\n{daemon.output()}"
    assert daemon.stop() == 0
    assert [fields(d).get("READY") for d in got].count("1") == 1, f"READY=1 sent more than once: {got}"


@pytest.mark.integration
def test_a_healthy_daemon_pings_the_watchdog_well_within_watchdog_usec(
    notify_daemon: Callable[..., DaemonProcess], listener: Listener
) -> None:
    usec = 3_000_000
    daemon = notify_daemon(WATCHDOG_USEC=str(usec))
    got: list[bytes] = []
    ready = await_notification(listener, daemon, got, "READY", "1")
    expect_wired(daemon, got)
    assert ready is not None, f"no READY=1 within 15 s; got {got}"
    for _ in range(3):
        assert await_notification(listener, daemon, got, "WATCHDOG", "1", timeout=usec / 1e6) is not None, (
            f"no WATCHDOG=1 within WATCHDOG_USEC ({usec / 1e6} s): systemd would kill it; got {got}"
        )
    assert daemon.stop() == 0


@pytest.mark.integration
def test_a_commit_is_followed_by_a_one_line_status(
    layout: Layout, notify_daemon: Callable[..., DaemonProcess], listener: Listener
) -> None:
    daemon = notify_daemon()
    got: list[bytes] = []
    ready = await_notification(listener, daemon, got, "READY", "1")
    expect_wired(daemon, got)
    assert ready is not None, f"no READY=1 within 15 s; got {got}"
    before = len(got)
    (layout.data / "new.md").write_text("new")
    wait_for(lambda: "new.md" in tree_files(layout.git_dir), what="commit of new.md")
    status = await_notification(listener, daemon, got, "STATUS")
    assert status is not None and status["STATUS"], f"no STATUS= after a commit; got {got[before:]}"
    assert daemon.stop() == 0


# -- MemoryDenyWriteExecute=yes: the daemon runs under the same seccomp filter -----------------

# What systemd (before PR_SET_MDWE) installs for MemoryDenyWriteExecute=yes, for x86_64: EPERM for
# mmap with PROT_WRITE|PROT_EXEC, mprotect/pkey_mprotect with PROT_EXEC, shmat with SHM_EXEC.
MDWE_EXEC = r"""
import ctypes, errno, os, struct, sys
LD, JEQ, JSET, AND, RET = 0x20, 0x15, 0x45, 0x54, 0x06
ALLOW, DENY = 0x7FFF0000, 0x00050000 | errno.EPERM
src = [
    (None, LD, None, None, 4), (None, JEQ, None, "allow", 0xC000003E), (None, LD, None, None, 0),
    (None, JEQ, "mmap", None, 9), (None, JEQ, "exec", None, 10), (None, JEQ, "exec", None, 329),
    (None, JEQ, "shm", None, 30), (None, RET, None, None, ALLOW),
    ("mmap", LD, None, None, 32), (None, AND, None, None, 6), (None, JEQ, "deny", "allow", 6),
    ("exec", LD, None, None, 32), (None, JSET, "deny", "allow", 4),
    ("shm", LD, None, None, 32), (None, JSET, "deny", "allow", 0o100000),
    ("deny", RET, None, None, DENY), ("allow", RET, None, None, ALLOW),
]
at = {s[0]: i for i, s in enumerate(src) if s[0]}
rel = lambda label, i: 0 if label is None else at[label] - i - 1
code = ctypes.create_string_buffer(b"".join(
    struct.pack("HBBI", op, rel(jt, i), rel(jf, i), k) for i, (_, op, jt, jf, k) in enumerate(src)))
prog = ctypes.create_string_buffer(struct.pack("HxxxxxxQ", len(src), ctypes.addressof(code)))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.c_void_p(ctypes.addressof(prog)), 0, 0):
    sys.stderr.write("seccomp: " + os.strerror(ctypes.get_errno()) + "\n")
    sys.exit(125)
os.execv(sys.argv[1], sys.argv[1:])
"""
W_X_PROBE = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)"


@pytest.mark.integration
@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="x86_64 Linux filter")
def test_the_daemon_works_under_memory_deny_write_execute(layout: Layout, start_daemon: Start) -> None:
    prefix = (sys.executable, "-c", MDWE_EXEC)
    probe = subprocess.run([*prefix, sys.executable, "-c", W_X_PROBE], capture_output=True, text=True,
                           check=False, timeout=60)
    if probe.returncode == 125:
        pytest.skip(f"cannot install a seccomp filter here: {probe.stderr.strip()}")
    assert probe.returncode != 0 and "Operation not permitted" in probe.stderr, "the filter lets W+X through"
    daemon = start_daemon(prefix=prefix)
    assert daemon.events("daemon_start")[0]["observer"] == "inotify"
    (layout.data / "sub").mkdir()
    (layout.data / "sub" / "after.md").write_text("seen by inotify")
    wait_for(lambda: "sub/after.md" in tree_files(layout.git_dir), what="commit under the filter")
    assert daemon.stop() == 0


# -- the unit files ---------------------------------------------------------------------------


def unit(name: str) -> dict[str, list[str]]:
    """`[Section] key` -> values of a unit file; repeated keys (Environment=) keep every value."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section} {key.strip()}", []).append(value.strip())
    return out


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|min|h)?", value)
    assert match, value
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "min": 60, "h": 3600, None: 1}[match.group(2)]


@pytest.mark.parametrize("name", ["committer.service", "committer@.service"])
def test_the_unit_is_a_notify_service_that_leaves_time_for_the_last_push(name: str) -> None:
    u = unit(name)
    assert u["Service Type"] == ["notify"] and u["Service NotifyAccess"] == ["main"]
    assert u["Service KillSignal"] == ["SIGTERM"] and u["Service KillMode"] == ["mixed"]
    assert u["Service Restart"] == ["on-failure"]
    assert seconds(u["Service TimeoutStopSec"][0]) >= 2 * Settings().shutdown_timeout
    assert seconds(u["Service WatchdogSec"][0]) >= 10
    assert u["Service ExecStart"][0].split()[1:3] == ["run", "--config"]
    assert u["Service LoadCredential"][0].startswith("token:/etc/committer/")
    assert any(e.startswith("HOME=") for e in u["Service Environment"])
    assert u["Service ProtectSystem"] == ["strict"] and u["Service NoNewPrivileges"] == ["yes"]


def test_the_template_has_the_same_hardening_with_per_tenant_paths() -> None:
    single, tenant = unit("committer.service"), unit("committer@.service")
    per_tenant = {
        "Unit Description", "Unit RequiresMountsFor", "Service ExecStart", "Service Environment", "Service User",
        "Service Group", "Service StateDirectory", "Service LoadCredential", "Service ReadWritePaths",
    }
    assert {k: v for k, v in single.items() if k not in per_tenant} == {
        k: v for k, v in tenant.items() if k not in per_tenant
    }
    assert tenant["Service ExecStart"][0].endswith("--config /etc/committer/%i.toml")
    assert "COMMITTER_GIT_DIR=/app/git/%i/knowledge.git" in tenant["Service Environment"]
    assert "COMMITTER_DATA_DIR=/app/data/%i" in tenant["Service Environment"]
    assert tenant["Service LoadCredential"] == ["token:/etc/committer/%i.token"]
    assert tenant["Service ReadWritePaths"] == ["/app/data/%i /app/git/%i"]
    assert tenant["Unit RequiresMountsFor"] == tenant["Service ReadWritePaths"]
    defaults = Settings()
    assert single["Service ReadWritePaths"] == [f"{defaults.data_dir} {defaults.git_dir.parent}"]
    assert single["Unit RequiresMountsFor"] == single["Service ReadWritePaths"]


@pytest.fixture
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed")
    return path


def runnable_copy(name: str, directory: Path) -> Path:
    """The unit with ExecStart pointing at this committer: verify checks the executable exists."""
    script = Path(sys.executable).with_name("committer")
    command = str(script) if script.exists() else f"{sys.executable} -m committer"
    text = (UNITS / name).read_text()
    assert "ExecStart=/usr/local/bin/committer " in text
    copy = directory / name
    copy.write_text(text.replace("ExecStart=/usr/local/bin/committer ", f"ExecStart={command} "))
    return copy


@pytest.mark.parametrize("name", ["committer.service", "committer@.service"])
def test_systemd_analyze_verify_passes(analyze: str, name: str, tmp_path: Path) -> None:
    copy = runnable_copy(name, tmp_path)
    proc = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, check=False,
                          timeout=120, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    about_it = [line for line in proc.stderr.splitlines() if "committer" in line]
    assert proc.returncode == 0 and not about_it, proc.stderr


CRITICAL = ("ProtectSystem=", "ProtectHome=", "NoNewPrivileges=", "MemoryDenyWriteExecute=", "SystemCallFilter=",
            "CapabilityBoundingSet=", "User=", "RestrictNamespaces=", "RestrictAddressFamilies=~AF_PACKET")


@pytest.mark.parametrize("name", ["committer.service", "committer@.service"])
def test_systemd_analyze_security_rates_the_unit_ok_or_better(analyze: str, name: str, tmp_path: Path) -> None:
    copy = runnable_copy(name, tmp_path)
    proc = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(copy)], capture_output=True,
                          text=True, check=False, timeout=120, env={**os.environ, "SYSTEMD_COLORS": "0"})
    if "offline" in proc.stderr and proc.returncode != 0:
        pytest.skip(f"this systemd-analyze has no --offline: {proc.stderr.strip()}")
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) ([A-Z]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    score, verdict = float(match.group(1)), match.group(2)
    assert verdict in {"OK", "SAFE", "PERFECT"}, f"{name}: exposure {score} {verdict}"
    failed = [line for line in proc.stdout.splitlines() if line.lstrip().startswith("✗")]
    assert not [line for line in failed if line.lstrip("✗ ").startswith(CRITICAL)], "\n".join(failed)

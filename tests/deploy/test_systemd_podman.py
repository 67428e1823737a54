"""The units of systemd/ under a real systemd: booted as PID 1 of a privileged podman container.

The container is a Debian root (tests/podman.py) with systemd, committer installed in a virtual
environment under /opt/committer by systemd/README.md's own commands (pip given the wheels built
here instead of a clone), and the unit files copied in unchanged, installed the way that README
says. The remote is a smart-HTTP git server inside the container (tests/gitserver.py run as a
script) that accepts only the token, so a push that lands proves the daemon had the credential.
Drop-ins change only what a test needs to be quick (WatchdogSec=, the debounce); every other line
is the shipped unit's.
The container is privileged: without CAP_SYS_ADMIN, systemd 252 runs the unit without its mount
namespace ("assuming containerized execution and ignoring"), and the file system sandbox would be
silently missing, which the hardening test would catch.
"""

from __future__ import annotations

import errno
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.podman import IMAGE_PACKAGES, LABEL, ROOT, Podman, can_run, digest, json_lines, require, wheelhouse, why_not

pytestmark = [pytest.mark.integration, pytest.mark.podman, pytest.mark.timeout(900)]
REASON = why_not()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

UNITS = ROOT / "systemd"
PORT = 8418
TOKEN = "ghp_SystemdCredential0123456789abcdefABCD"
WRONG = "ghp_NotTheRightToken0123456789abcdefABCDE"
FAST = 'debounce = "200ms"\npush_interval = "500ms"\n'
# On top of the Debian root: systemd as init, and what systemd/README.md's install steps use.
SYSTEMD_IMAGE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \\
 && apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-unsafe-io \\
      systemd systemd-sysv dbus acl procps \\
 && rm -rf /var/lib/apt/lists/*
COPY wheels/ /wheels/
"""
# systemd/README.md's install of committer itself, run as written but for where pip finds the package.
INSTALL_STEPS = ("python3 -m venv ", "/opt/committer/bin/pip install ", "ln -s ")
FROM_WHEELS = "--no-index --find-links /wheels committer"


def install_steps() -> list[str]:
    """The commands of systemd/README.md's install that put committer in /opt/committer, as written."""
    text = (UNITS / "README.md").read_text()
    block = text[text.index("## Install"):].split("```sh", 1)[1].split("```", 1)[0]
    steps = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith(INSTALL_STEPS)]
    assert [step.split()[0] for step in steps] == ["python3", "/opt/committer/bin/pip", "ln"], steps
    return steps


@dataclass
class Machine:
    """The booted container; commands run in it with `podman exec`."""

    podman: Podman
    name: str

    def sh(self, script: str, check: bool = True, input: str | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
        args = ["exec", "--interactive", self.name] if input is not None else ["exec", self.name]
        return self.podman.run(*args, "sh", "-c", script, check=check, input=input, timeout=timeout)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        flags = " ".join(f"-p {p}" for p in properties)
        out = self.sh(f"systemctl show {flags} {shlex.quote(unit)}").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def write(self, path: str, text: str, user: str = "app") -> None:
        """Write a file as the application's user would."""
        self.sh(f"runuser -u {user} -- sh -c 'mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\"' sh {shlex.quote(path)}",
                input=text)

    def put(self, path: str, text: str, mode: str = "0644", group: str = "root") -> None:
        """Install a root-owned file."""
        self.sh(f"cat > {path}.new && chmod {mode} {path}.new && chgrp {group} {path}.new && mv {path}.new {path}",
                input=text)

    def served(self, repo: str, path: str) -> str | None:
        """A file on the server's main branch, or None."""
        proc = self.sh(f"git --git-dir=/srv/git/{repo} cat-file blob main:{shlex.quote(path)}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def committed(self, git_dir: str) -> set[str]:
        proc = self.sh(f"git -c safe.directory='*' --git-dir={git_dir} ls-tree -r --name-only HEAD", check=False)
        return set(proc.stdout.split())

    def events(self, unit: str, invocation: str | None = None) -> list[dict[str, Any]]:
        """The daemon's JSON log lines from the journal, for one invocation or every one."""
        where = f"_SYSTEMD_INVOCATION_ID={invocation}" if invocation else f"-u {shlex.quote(unit)}"
        return json_lines(self.sh(f"journalctl --no-pager -o cat {where}").stdout)

    def journal(self, unit: str) -> str:
        return self.sh(f"journalctl --no-pager -o cat -u {shlex.quote(unit)}").stdout

    def systemctl(self, verb: str, *units: str) -> None:
        """systemctl VERB UNITS; a failure shows each unit's status and journal."""
        proc = self.sh(f"systemctl {verb} {' '.join(units)}", check=False)
        if proc.returncode != 0:
            details = "".join(self.sh(f"systemctl status --no-pager {u}; journalctl --no-pager -n 40 -u {u}",
                                      check=False).stdout for u in units)
            raise AssertionError(f"systemctl {verb} {' '.join(units)}: {proc.stderr}\n{details}")

    def drop_in(self, unit: str, text: str) -> None:
        self.sh(f"mkdir -p /etc/systemd/system/{unit}.d")
        self.put(f"/etc/systemd/system/{unit}.d/test.conf", text)
        self.sh("systemctl daemon-reload")

    def reset(self, unit: str) -> None:
        """The unit stopped, as shipped (no drop-in), nothing failed, the right token."""
        self.sh(f"systemctl stop {unit}; rm -rf /etc/systemd/system/{unit}.d; systemctl daemon-reload; "
                f"systemctl reset-failed {unit} || true")
        self.put("/etc/committer/token", TOKEN, mode="0600")

    def wait_restarted(self, unit: str, after: int, old_pid: str, timeout: float = 60) -> dict[str, str]:
        def restarted() -> dict[str, str] | None:
            state = self.show(unit, "NRestarts", "ActiveState", "SubState", "MainPID")
            fresh = int(state["NRestarts"]) > after and state["MainPID"] not in ("0", old_pid)
            return state if fresh and state["SubState"] == "running" else None

        return wait_for(restarted, timeout, f"{unit} restarted", 0.25)  # type: ignore[no-any-return]


def boot(podman: Podman, image: str) -> Machine:
    name = podman.name("systemd")
    podman.run("run", "--detach", "--name", name, "--label", f"{LABEL}=1", "--privileged", "--systemd=always",
               "--network", "none", image, "/sbin/init")
    machine = Machine(podman, name)

    def booted() -> str | None:
        state = machine.sh("systemctl is-system-running", check=False).stdout.strip()
        return state if state not in ("", "initializing", "starting") else None

    wait_for(booted, 120, "systemd to finish booting", 0.25)
    return machine


def install(machine: Machine) -> None:
    """systemd/README.md's install steps, the git server and its repositories."""
    for step in install_steps():
        installed = step.replace("/opt/committer/bin/pip install .", f"/opt/committer/bin/pip install {FROM_WHEELS}")
        machine.sh(installed, timeout=300)
    assert machine.sh("command -v committer").stdout.strip() == "/usr/local/bin/committer"
    assert machine.sh("readlink -f /usr/local/bin/committer").stdout.strip() == "/opt/committer/bin/committer"
    for unit in ("committer.service", "committer@.service"):
        machine.podman.run("cp", str(UNITS / unit), f"{machine.name}:/etc/systemd/system/{unit}")
    machine.podman.run("cp", str(ROOT / "tests" / "gitserver.py"), f"{machine.name}:/srv/gitserver.py")
    # systemd leaves mount propagation to the container manager, and podman's mounts are private:
    # the credential mounts systemd makes for LoadCredential= would never reach the service (an
    # empty directory it may not enter). On a host, systemd makes / shared at boot; do the same.
    machine.sh("mount --make-rshared /")
    machine.sh("""set -e
        useradd --system --home-dir /var/lib/committer --shell /usr/sbin/nologin committer
        useradd --system --shell /usr/sbin/nologin app
        install -d -o committer -g committer -m 0700 /app/git
        install -d -o app -g app -m 0750 /app/data
        setfacl -R -m u:committer:rwX,d:u:committer:rwX,u:app:rwX,d:u:app:rwX /app/data
        install -d -m 0755 /etc/committer
        mkdir -p /srv/git
        for repo in notes a b; do
            git init --quiet --bare --initial-branch=main /srv/git/$repo.git
            git --git-dir=/srv/git/$repo.git config http.receivepack true
        done
    """)
    machine.put("/srv/git-token", TOKEN, mode="0600")
    machine.put("/etc/committer/committer.toml", f'remote = "http://127.0.0.1:{PORT}/notes.git"\n{FAST}',
                mode="0640", group="committer")
    machine.put("/etc/committer/token", TOKEN, mode="0600")
    machine.sh("systemctl daemon-reload && systemd-run --unit=gitserver --property=Type=exec "
               f"python3 /srv/gitserver.py /srv/git {PORT} /srv/git-token")
    wait_for(lambda: "serving" in machine.journal("gitserver"), 30, "the git server", 0.25)


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    podman = require()
    base = podman.debian_root(IMAGE_PACKAGES)
    can_run(podman, base, "the systemd tests")
    context = tmp_path_factory.mktemp("systemd-image")
    packages = wheelhouse(context / "wheels")
    (context / "Containerfile").write_text(SYSTEMD_IMAGE)
    tag = podman.used(f"localhost/committer-test/systemd:{digest(base, SYSTEMD_IMAGE, packages)}")
    # apt reaches Debian's mirror from the host's network; pip installs from the wheels only.
    image = podman.build(context, tag, "--network", "host", "--build-arg", f"BASE={base}")
    podman.clean_stale()  # after this run's images are marked as used
    booted = boot(podman, image)
    try:
        install(booted)
        yield booted
    finally:
        podman.run("rm", "--force", "--time", "10", booted.name, check=False)


# -- the tests -------------------------------------------------------------------------------------


def test_systemd_boots_as_pid_1_and_the_system_is_running(machine: Machine) -> None:
    assert machine.sh("cat /proc/1/comm").stdout.strip() == "systemd"
    state = machine.sh("systemctl is-system-running", check=False).stdout.strip()
    failed = machine.sh("systemctl --failed --no-legend --plain", check=False).stdout
    assert state == "running", f"{state}; failed units:\n{failed}"


def test_the_service_is_ready_only_after_its_first_commit_and_pushes_with_its_credential(machine: Machine) -> None:
    unit = "committer.service"
    machine.reset(unit)
    machine.write("/app/data/before.md", "already here\n")
    machine.systemctl("start", unit)  # Type=notify: returns once the daemon sent READY=1
    assert "before.md" in machine.committed("/app/git/knowledge.git"), "READY=1 before the first commit"
    state = machine.show(unit, "Type", "ActiveState", "SubState", "StatusText", "MainPID", "InvocationID")
    assert (state["Type"], state["ActiveState"], state["SubState"]) == ("notify", "active", "running"), state
    assert "commits pending" in state["StatusText"], state
    wait_for(lambda: machine.served("notes.git", "before.md") == "already here\n", 60, "the push over HTTP", 0.25)

    # The token reached git only through LoadCredential=: the daemon's user cannot read the file,
    # its environment holds no token, and the server saw only the right one.
    pid = state["MainPID"]
    assert machine.sh("runuser -u committer -- cat /etc/committer/token", check=False).returncode != 0
    environ = machine.sh(f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout
    assert f"CREDENTIALS_DIRECTORY=/run/credentials/{unit}" in environ.splitlines() and TOKEN not in environ
    served = machine.journal("gitserver")
    assert re.search(r"POST /notes\.git/git-receive-pack auth=ok", served), served
    # git asks its credential helper only after the server's 401 challenge, so a request without
    # credentials comes first; every request that carried some carried the right token.
    assert "auth=wrong" not in served, served
    assert all(line.endswith("auth=ok") for line in served.splitlines() if "POST " in line), served
    assert TOKEN not in machine.journal(unit)

    # Another token in the credential's source file: the next start's pushes are refused.
    machine.put("/etc/committer/token", WRONG, mode="0600")
    machine.systemctl("restart", unit)
    invocation = machine.show(unit, "InvocationID")["InvocationID"]
    machine.write("/app/data/refused.md", "with the wrong token\n")

    def refused() -> bool:
        return any(e.get("event") == "git_push" and e.get("kind") == "auth" for e in machine.events(unit, invocation))

    wait_for(refused, 60, "a push refused for its token", 0.25)
    assert "auth=wrong" in machine.journal("gitserver")
    assert machine.served("notes.git", "refused.md") is None
    machine.reset(unit)


# Each directive of the unit that confines it, and how `systemctl show` spells its value.
HARDENING = (
    "User", "Group", "UMask", "ProtectSystem", "ReadWritePaths", "ProtectHome", "PrivateTmp", "PrivateDevices",
    "PrivateIPC", "PrivateMounts", "ProtectProc", "ProcSubset", "NoNewPrivileges", "CapabilityBoundingSet",
    "AmbientCapabilities", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictNamespaces", "RestrictRealtime",
    "RestrictSUIDSGID", "RemoveIPC", "LockPersonality", "MemoryDenyWriteExecute", "RestrictAddressFamilies",
    "SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber",
)


def unit_directives(name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def syscalls(machine: Machine, *groups: str) -> set[str]:
    """The system calls of systemd's named groups (@system-service, ...), nested groups expanded."""
    members: dict[str, list[str]] = {}
    current = ""
    for line in machine.sh("systemd-analyze syscall-filter --no-pager").stdout.splitlines():
        if line.startswith("@"):
            current = line.strip()
            members[current] = []
        elif line.strip() and not line.strip().startswith("#") and current:
            members[current].append(line.strip())

    def expand(name: str) -> set[str]:
        return set().union(*(expand(m) for m in members[name])) if name.startswith("@") else {name}

    return set().union(*(expand(g) for g in groups))


def test_every_hardening_directive_is_in_force_while_it_commits_and_pushes(machine: Machine) -> None:
    unit = "committer.service"
    machine.reset(unit)
    machine.systemctl("start", unit)
    directives = unit_directives(unit)
    assert set(HARDENING) <= set(directives), set(HARDENING) - set(directives)
    shown = machine.show(unit, *HARDENING, "MainPID")
    for key in HARDENING:
        expected = directives[key][-1]
        if key == "RestrictAddressFamilies":
            assert set(shown[key].split()) == set(expected.split()), (key, shown[key])
        elif key == "SystemCallErrorNumber":
            assert shown[key] == str(getattr(errno, expected)), (key, shown[key])
        elif key == "SystemCallFilter":
            allowed, denied = syscalls(machine, directives[key][0]), syscalls(machine, *directives[key][1][1:].split())
            in_force = set(shown[key].split())
            # systemd drops the names this libseccomp does not know (calls of newer kernels)
            assert in_force <= allowed - denied and len(allowed - denied - in_force) < 5, in_force ^ (allowed - denied)
            assert allowed & denied and {"inotify_add_watch", "execve", "connect"} <= in_force
        else:
            assert shown[key] == expected, (key, shown[key], expected)

    # The limits of systemd/README.md's "Memory and tasks", as systemd reads them.
    limits = machine.show(unit, "MemoryMax", "TasksMax")
    assert limits == {"MemoryMax": str(512 * 2**20), "TasksMax": "256"}, limits
    assert (directives["MemoryMax"], directives["TasksMax"]) == (["512M"], ["256"])

    # What the kernel says of the running daemon, and of its view of the file system.
    pid = shown["MainPID"]
    status = dict(line.split(":", 1) for line in machine.sh(f"cat /proc/{pid}/status").stdout.splitlines())
    assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2", status
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0, status
    assert machine.sh(f"readlink /proc/{pid}/ns/mnt").stdout != machine.sh("readlink /proc/1/ns/mnt").stdout
    inside = f"nsenter --target {pid} --mount --"

    def options(path: str) -> str:
        return machine.sh(f"{inside} findmnt --noheadings --output OPTIONS --target {path}").stdout

    assert all(options(path).startswith("ro,") for path in ("/usr", "/etc", "/var/lib")), "ProtectSystem=strict"
    assert all(options(path).startswith("rw,") for path in ("/app/data", "/app/git")), "ReadWritePaths="
    assert machine.sh(f"{inside} ls -A /root").stdout.strip() == "", "ProtectHome= hides /root"

    # And under all of it, it commits and pushes.
    machine.write("/app/data/hardened.md", "under every directive\n")
    wait_for(lambda: machine.served("notes.git", "hardened.md") == "under every directive\n", 60,
             "the push from the hardened unit", 0.25)
    assert "226/NAMESPACE" not in machine.journal(unit)
    machine.reset(unit)


def test_systemctl_stop_commits_and_pushes_what_is_pending(machine: Machine) -> None:
    unit = "committer.service"
    machine.reset(unit)
    # A debounce far longer than the test: the change is still pending when the stop comes.
    machine.drop_in(unit, "[Service]\nEnvironment=COMMITTER_DEBOUNCE=10m COMMITTER_MAX_DELAY=10m\n")
    machine.systemctl("start", unit)
    invocation = machine.show(unit, "InvocationID")["InvocationID"]
    machine.write("/app/data/pending.md", "written just before the stop\n")
    started = time.monotonic()
    machine.systemctl("stop", unit)
    took = time.monotonic() - started
    assert machine.served("notes.git", "pending.md") == "written just before the stop\n"
    state = machine.show(unit, "Result", "ExecMainStatus", "ExecMainCode", "TimeoutStopUSec")
    assert state["Result"] == "success" and state["ExecMainStatus"] == "0", state
    assert took < 30, f"systemctl stop took {took:.1f} s"
    names = [e.get("event") for e in machine.events(unit, invocation)]
    assert "daemon_stopping" in names, names
    after = names[names.index("daemon_stopping"):]
    assert "git_commit" in after and "git_push" in after and after[-1] == "daemon_stop", names
    machine.reset(unit)


def test_the_watchdog_restarts_a_daemon_that_stops_answering(machine: Machine) -> None:
    unit = "committer.service"
    machine.reset(unit)
    machine.systemctl("start", unit)
    assert machine.show(unit, "WatchdogUSec")["WatchdogUSec"] == "1min", "the shipped unit's WatchdogSec=60s"
    machine.drop_in(unit, "[Service]\nWatchdogSec=3s\n")
    machine.systemctl("restart", unit)
    state = machine.show(unit, "MainPID", "NRestarts", "WatchdogUSec")
    assert state["WatchdogUSec"] == "3s", state

    # The pings arrive: systemd's record of the last one moves, twice.
    seen = {machine.show(unit, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]}
    for _ in range(2):
        wait_for(lambda: machine.show(unit, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"] not in seen,
                 10, "a WATCHDOG=1 ping", 0.2)
        seen.add(machine.show(unit, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
    assert machine.show(unit, "MainPID")["MainPID"] == state["MainPID"]

    machine.sh(f"kill -STOP {state['MainPID']}")
    machine.wait_restarted(unit, int(state["NRestarts"]), state["MainPID"])
    assert "Watchdog timeout" in machine.journal(unit)
    machine.write("/app/data/after-watchdog.md", "the restarted daemon works\n")
    wait_for(lambda: machine.served("notes.git", "after-watchdog.md") is not None, 60, "a push after the restart", 0.25)
    machine.reset(unit)


def test_a_daemon_killed_with_sigkill_is_restarted_and_loses_nothing(machine: Machine) -> None:
    unit = "committer.service"
    machine.reset(unit)
    machine.systemctl("start", unit)
    state = machine.show(unit, "MainPID", "NRestarts")
    machine.sh(f"kill -KILL {state['MainPID']}")
    machine.write("/app/data/while-down.md", "written while it was down\n")
    machine.wait_restarted(unit, int(state["NRestarts"]), state["MainPID"])
    assert "status=9/KILL" in machine.journal(unit)
    wait_for(lambda: machine.served("notes.git", "while-down.md") == "written while it was down\n", 60,
             "the file written while it was down, pushed", 0.25)
    machine.reset(unit)


def test_two_template_instances_run_side_by_side_each_as_its_own_user(machine: Machine) -> None:
    for tenant in ("a", "b"):
        machine.sh(f"""set -e
            id committer-{tenant} >/dev/null 2>&1 || useradd --system --shell /usr/sbin/nologin committer-{tenant}
            install -d -o committer-{tenant} -g committer-{tenant} -m 0700 /app/git/{tenant}
            install -d -o app -g app -m 0750 /app/data/{tenant}
            setfacl -R -m u:committer-{tenant}:rwX,d:u:committer-{tenant}:rwX /app/data/{tenant}
            # the parents: each tenant's user passes through them, and reads nothing else there
            chmod 0711 /app/git
            setfacl -m u:committer-{tenant}:x /app/data
        """)
        machine.put(f"/etc/committer/{tenant}.toml", f'remote = "http://127.0.0.1:{PORT}/{tenant}.git"\n{FAST}',
                    mode="0640", group=f"committer-{tenant}")
        machine.put(f"/etc/committer/{tenant}.token", TOKEN, mode="0600")
    machine.systemctl("start", "committer@a.service", "committer@b.service")
    machine.write("/app/data/a/for-a.md", "tenant a\n")
    machine.write("/app/data/b/for-b.md", "tenant b\n")
    wait_for(lambda: machine.served("a.git", "for-a.md") == "tenant a\n"
             and machine.served("b.git", "for-b.md") == "tenant b\n", 60, "both tenants pushed", 0.25)
    assert machine.served("a.git", "for-b.md") is None and machine.served("b.git", "for-a.md") is None

    pids = {t: machine.show(f"committer@{t}.service", "MainPID")["MainPID"] for t in ("a", "b")}
    users = {t: machine.sh(f"ps -o user= -p {pid}").stdout.strip() for t, pid in pids.items()}
    assert users == {"a": "committer-a", "b": "committer-b"}, users
    assert machine.sh("stat -c %U /app/git/a/knowledge.git /app/git/b/knowledge.git").stdout.split() == [
        "committer-a", "committer-b"]
    # One tenant's user cannot read the other's history.
    assert machine.sh("runuser -u committer-a -- ls /app/git/b", check=False).returncode != 0
    running = machine.sh("systemctl list-units --no-legend --plain --state=running 'committer@*'").stdout
    assert {line.split()[0] for line in running.splitlines()} == {"committer@a.service", "committer@b.service"}
    machine.systemctl("stop", "committer@a.service", "committer@b.service")

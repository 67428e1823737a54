"""committer doctor: check the set-up and say how to fix what is wrong."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from committer.core import clock
from committer.core.errors import CommitterError, redact
from committer.core.secret import webhook_secret
from committer.core.settings import Settings, env_name, policy, shown
from committer.git import lfs
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from committer.ops.lock import holder_pid
from committer.sync.credentials import read_token
from committer.sync.errors import HINTS, PushError
from committer.sync.transport import Remote
from committer.watch.mounts import POLLED_FILESYSTEMS

MIN_GIT = (2, 36)
MERGE_GIT = (2, 38)  # git merge-tree --write-tree, for pulls that merge


@dataclass(frozen=True)
class Check:
    """One finding: ok, warn or fail, what was seen, and how to fix it."""

    name: str
    status: str
    detail: str
    fix: str = ""


def _git(_settings: Settings) -> Iterator[Check]:
    try:
        out = GitRunner(30.0).run(Path(tempfile.gettempdir()), ["--version"]).stdout.decode()
    except CommitterError as exc:
        yield Check("git", "fail", exc.message, "install git 2.36 or newer")
        return
    match = re.search(r"(\d+)\.(\d+)", out)
    version = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if version < MIN_GIT:
        yield Check("git", "fail", out.strip(), "install git 2.36 or newer (core.fsync keeps commits durable)")
    elif version < MERGE_GIT:
        yield Check("git", "warn", f"{out.strip()}: pulls that need a merge fail (git merge-tree --write-tree)",
                    "install git 2.38 or newer to merge remote edits; fast-forward pulls work")
    else:
        yield Check("git", "ok", out.strip())


def _lfs(settings: Settings) -> Iterator[Check]:
    if not settings.lfs_threshold:
        yield Check("git-lfs", "ok", f"not used (lfs_threshold 0): files over {settings.max_file_size} B are held")
    elif lfs.available():
        yield Check("git-lfs", "ok", f"installed; files of {settings.lfs_threshold} B and more go through LFS")
    else:
        yield Check("git-lfs", "warn", f"not installed: files of {settings.lfs_threshold} B and more are held",
                    "apt-get install git-lfs (or set lfs_threshold = 0 to turn LFS off)")


def _mount_of(path: Path) -> tuple[str, str]:
    """(mount point, filesystem type) holding path, from /proc/mounts."""
    best, kind = "/", "unknown"
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return best, kind
    target = str(path.resolve())
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, fields[2]
    return best, kind


def _dirs(settings: Settings) -> Iterator[Check]:
    data, git = settings.data_dir, settings.git_dir
    if not data.is_dir():
        yield Check("data dir", "fail", f"{data} does not exist or is not a directory",
                    "create or mount it, or set data_dir")
        return
    if not os.access(data, os.R_OK | os.X_OK):
        yield Check("data dir", "fail", f"{data} cannot be read by this user", "fix its permissions")
    elif not os.access(data, os.W_OK):
        yield Check("data dir", "warn", f"{data} is read-only for this user: restore cannot write into it",
                    "give this user write access if restore is wanted")
    else:
        yield Check("data dir", "ok", str(data))
    point, kind = _mount_of(data)
    if kind.startswith(POLLED_FILESYSTEMS) and settings.observer == "inotify":
        yield Check("data dir filesystem", "warn", f"{kind} at {point}: inotify may see no changes there",
                    "set observer = poll (or auto, which polls there)")
    elif kind.startswith(POLLED_FILESYSTEMS):
        yield Check("data dir filesystem", "ok", f"{kind} at {point}: polled every {settings.poll_interval:g}s")
    else:
        yield Check("data dir filesystem", "ok", f"{kind} at {point}")
    existing = git if git.exists() else git.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if GitRepo(git, data, settings.branch).exists():
        yield Check("git dir", "ok" if os.access(git, os.W_OK) else "fail", str(git),
                    "" if os.access(git, os.W_OK) else "give this user write access to the git dir")
    elif os.access(existing, os.W_OK):
        yield Check("git dir", "warn", f"{git} does not exist yet", "committer init (or run) creates it")
    else:
        yield Check("git dir", "fail", f"{git} cannot be created: {existing} is not writable",
                    "create it or give this user write access")
    same = os.stat(existing).st_dev == os.stat(data).st_dev
    yield Check("filesystems", "ok", "data and git dirs share a filesystem" if same else
                "data and git dirs are on different filesystems (fine: the git dir may be local disk)")
    usage = shutil.disk_usage(existing)
    free_gb = usage.free / 1e9
    low = usage.free < 1e9 or usage.free < usage.total * 0.05
    status = "fail" if usage.free < 100e6 else "warn" if low else "ok"
    yield Check("free space", status, f"{free_gb:.1f} GB free for the git dir",
                "" if status == "ok" else "free space or move the git dir: commits stop when the disk is full")


def _inotify(settings: Settings) -> Iterator[Check]:
    if settings.observer == "poll":
        yield Check("inotify", "ok", "not used (observer = poll)")
        return
    try:
        watches = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
        instances = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    except (OSError, ValueError):
        yield Check("inotify", "warn", "limits unknown (/proc/sys/fs/inotify unreadable)")
        return
    dirs = sum(1 for _ in os.walk(settings.data_dir)) if settings.data_dir.is_dir() else 0
    detail = f"{dirs} directories to watch; max_user_watches {watches}, max_user_instances {instances}"
    fix = (f"sysctl fs.inotify.max_user_watches={max(dirs * 4, 524288)} "
           "(and in /etc/sysctl.d/), or set observer = poll")
    if dirs >= watches:
        yield Check("inotify", "fail", detail, fix)
    elif dirs > watches * 0.5:
        yield Check("inotify", "warn", detail + " (watches are shared by every program of this user)", fix)
    else:
        yield Check("inotify", "ok", detail)


def remote_checks(settings: Settings) -> Iterator[Check]:
    """The remote: its credentials (a token, or one its forge mints), the visibility rule, and one ls-remote."""
    if not settings.remote:
        yield Check("remote", "ok", "none: local history only")
        return
    shown = redact(settings.remote)
    remote = Remote(settings)
    minted = False
    if remote.is_http:
        minted = yield from _minted(remote)
    if not minted:
        try:
            token = read_token(settings)
        except CommitterError as exc:
            yield Check("token", "fail", exc.message, "make the token file readable by this user")
            return
        if remote.is_http:
            yield Check("token", "ok" if token else "warn",
                        "found" if token else "none (a public or otherwise authorised remote?)",
                        "" if token else "set COMMITTER_TOKEN, token_file or the systemd credential `token`")
    yield from _visibility(settings, remote)
    with tempfile.TemporaryDirectory() as scratch:
        repo = GitRepo.of(settings)
        if not repo.exists():
            repo = GitRepo(Path(scratch) / "probe.git", settings.data_dir, settings.branch)
            repo.init()
        try:
            result = remote.run(repo, ["ls-remote", "--heads", "--end-of-options", remote.url, repo.ref], timeout=30)
        except PushError as exc:
            yield Check("remote", "fail", f"{shown}: {exc.kind}: {exc.detail}", HINTS[exc.kind])
            return
    if result.timed_out:
        yield Check("remote", "fail", f"{shown}: no answer within 30 s", "check the network and the URL")
        return
    error = remote.forge.classify(result.returncode, result.stderr, result.stdout, secrets=result.secrets)
    if error is not None:
        yield Check("remote", "fail", f"{shown}: {error.kind}: {error.detail}", HINTS[error.kind])
    elif result.stdout.strip():
        yield Check("remote", "ok", f"{shown} reachable, credentials accepted, branch {settings.branch} exists")
    else:
        yield Check("remote", "ok", f"{shown} reachable; no branch {settings.branch} yet (the first push makes it)")


def _minted(remote: Remote) -> Generator[Check, None, bool]:
    """A token minted now by the remote's forge (an App's): shown with its expiry; False when none is minted."""
    forge = remote.forge
    try:
        minted = forge.mint_token()
    except PushError as exc:
        yield Check(f"{forge.name} app", "fail", exc.detail, HINTS["auth"])
        return True
    if minted is None:
        return False
    expires = clock.iso(minted.expires_at or 0)
    yield Check(f"{forge.name} app", "ok", f"{minted.what}: {minted.detail}, expires {expires}")
    return True


def _visibility(settings: Settings, remote: Remote) -> Iterator[Check]:
    try:
        seen = remote.forge.visibility(remote.credentials)
    except PushError as exc:
        yield Check("visibility", "fail", f"{exc.kind}: {exc.detail}", HINTS[exc.kind])
        return
    if seen is None or seen.state == "unknown":
        return
    full = seen.repository
    if seen.state == "private":
        yield Check("visibility", "ok", f"{full} is private")
    elif settings.allow_public:
        yield Check("visibility", "warn", f"{full} is public, and allow_public lets committer push to it",
                    "make the repository private unless its content is meant to be public")
    else:
        yield Check("visibility", "fail", f"{full} is public: nothing is pushed to it", HINTS["public_repository"])


def _pull(settings: Settings) -> Iterator[Check]:
    if not settings.remote:
        return
    ways = [f"every {settings.pull_interval:g}s"] if settings.pull_interval else []
    secret = webhook_secret(settings.webhook_secret_file)
    if settings.http and secret:
        ways.append("on the push webhook at /webhook")
    elif settings.http:
        yield Check("webhook", "warn", "no webhook secret: POST /webhook refuses every delivery",
                    "set COMMITTER_WEBHOOK_SECRET, webhook_secret_file or the systemd credential `webhook_secret`")
    detail = "automatic: " + " and ".join(ways) if ways else "only by `committer pull`"
    yield Check("pull", "ok", f"{detail}; divergence: {_DIVERGENCE[policy(settings)]}")


_DIVERGENCE = {"merge": "merge", "ff-only": "refused, waiting for a person (ff-only)",
               "pull-request": "a branch and a pull request (pull-request)"}


def _daemon(settings: Settings) -> Iterator[Check]:
    pid = holder_pid(settings.git_dir)
    yield Check("daemon", "ok", f"running (pid {pid})" if pid else "not running")


CHECKS: tuple[Callable[[Settings], Iterator[Check]], ...] = (
    _git, _lfs, _dirs, _inotify, remote_checks, _pull, _daemon,
)


def diagnose(settings: Settings) -> dict[str, Any]:
    """Every check, and every setting with its value and where it came from."""
    checks = [check for run in CHECKS for check in run(settings)]
    values = {name: {**item, "env": env_name(name)} for name, item in shown(settings).items()}
    return {"ok": not any(c.status == "fail" for c in checks), "checks": [asdict(c) for c in checks],
            "settings": values}


def render(report: dict[str, Any]) -> str:
    """The report for people: one line a check, fixes indented, then the settings."""
    lines = []
    for check in report["checks"]:
        lines.append(f"{check['status']:<5} {check['name']:<20} {check['detail']}")
        if check["fix"]:
            lines.append(f"{'':26}fix: {check['fix']}")
    lines.append("")
    lines.append("settings (value, source):")
    width = max(len(n) for n in report["settings"])
    for name, item in report["settings"].items():
        lines.append(f"  {name:<{width}}  {item['value']!s:<40} {item['source']}")
    return "\n".join(lines)

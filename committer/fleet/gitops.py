"""What a fleet task does to git: create a repository, clone one (into a folder beside the target, renamed into
place), fetch, fast-forward, describe it (branches, counts, head) and read its history as it is printed.

Every git process goes through the runner (hermetic environment, C locale, its own session, the group killed
at its deadline); network git gets `timeout` (the fleet's git_timeout). A failure is a `TaskFailed` whose one
line an operator can act on, credentials removed, saying whether a later attempt may succeed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from committer.core.errors import GitError, redact
from committer.fleet.sources import Access as Access
from committer.fleet.sources import Layout as Layout
from committer.fleet.sources import Snapshot, duration, reason, shown
from committer.fleet.sources import Source as Source
from committer.fleet.sources import TaskFailed as TaskFailed
from committer.fleet.sources import config_env as config_env
from committer.fleet.store import BranchState
from committer.git import leftovers
from committer.git.activity import Quiet
from committer.git.runner import GitRunner, drain, git_argv, git_env, kill_group

DEFAULT_BRANCH = "main"
MODES = ("mirror", "bare", "regular")
# What a task must not inherit from the worker's environment: a prompt would wait for ever, and another
# config source would override the scoped credential helper.
_INHERITED = ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_CONFIG_PARAMETERS", "GIT_SSH", "GIT_SSH_COMMAND")
_FIELDS = 5  # sha, author name, author email, commit time, subject
_LOG_FORMAT = "--format=%H%x00%an%x00%ae%x00%ct%x00%s"
_DECORATED = _LOG_FORMAT + "%x00%D"  # and the refs at the commit: `HEAD -> refs/heads/main, refs/heads/dev, tag: ...`
_NAME_MAX, _SUBJECT_MAX = 255, 1000
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(incoming|old)-[0-9a-f]{12}$")


class Git:
    """The git side of fleet tasks; `timeout` bounds each network call, the runner's own each local one."""

    def __init__(self, runner: GitRunner, timeout: float, stall: float = 120.0) -> None:
        self.runner = runner
        self.timeout = timeout
        self.stall = stall

    # Processes

    def _call(self, argv: list[str], what: str, env: Mapping[str, str] | None = None, *,
              timeout: float | None = None, stdin: IO[bytes] | None = None,
              network: bool = False) -> tuple[int, bytes, bytes]:
        limit = self.runner.timeout if timeout is None else timeout
        full = git_env()
        for name in _INHERITED:
            full.pop(name, None)
        full.update(env or {})
        try:
            proc = self.runner.start(argv, full, stdin if stdin is not None else subprocess.DEVNULL, network)
        except GitError as exc:
            raise TaskFailed(f"{what}: cannot run git: {exc.stderr}", retry=True) from None
        try:
            out, err = self._wait(proc, limit, what) if network else proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            drain(proc)
            raise TaskFailed(f"{what} timed out after {duration(limit)}", retry=True) from None
        finally:
            self.runner.forget(proc)
        return proc.returncode, out, err

    def _wait(self, proc: subprocess.Popen[bytes], limit: float, what: str) -> tuple[bytes, bytes]:
        """A network call's output; stopped at `limit`, or sooner once its processes have neither computed nor
        moved a byte for `stall` seconds (a source that stopped answering: a big clone that works goes on)."""
        began, watch = time.monotonic(), None  # read /proc only for a call that outlasts its first step
        step = min(1.0, max(0.05, self.stall / 4))
        while True:
            left = began + limit - time.monotonic()
            try:
                return proc.communicate(timeout=max(0.01, min(step, left)))
            except subprocess.TimeoutExpired:
                if left <= step:
                    raise
            if watch is None:
                watch = Quiet(proc.pid, self.stall)
            elif watch.expired():
                kill_group(proc)
                drain(proc)
                raise TaskFailed(f"{what}: the source stopped answering (nothing moved for {duration(self.stall)})",
                                 retry=True)

    def _local(self, layout: Layout, args: Sequence[str], *, ok: tuple[int, ...] = (0,),
               stdin: IO[bytes] | None = None) -> str:
        what = f"git {args[0]} in {layout.path}"
        code, out, err = self._call(git_argv(layout.git_dir, args, layout.work_tree), what, stdin=stdin)
        if code not in ok:
            raise TaskFailed(f"{what} failed (exit {code}): {_last(err)}", retry=True)
        return out.decode("utf-8", "replace")

    def _network(self, argv: list[str], source: Source, action: str, git_dir: Path | None = None) -> str:
        before = leftovers.snapshot(git_dir) if git_dir is not None else frozenset()
        what = f"{action} {shown(source)}"
        try:
            code, out, err = self._call(argv, what, source.access.env, timeout=self.timeout, network=True)
        except TaskFailed:
            if git_dir is not None:
                leftovers.remove(git_dir, before)  # a killed fetch leaves its half-received pack behind
            raise
        if code != 0:
            raise reason(err.decode("utf-8", "replace"), source, action)
        return out.decode("utf-8", "replace")

    # The folder

    @staticmethod
    def exists(layout: Layout) -> bool:
        """Whether a repository is there (a folder that is not one is no repository)."""
        return (layout.git_dir / "HEAD").is_file() and (layout.git_dir / "objects").is_dir()

    @staticmethod
    def clear_leftovers(target: Path) -> list[Path]:
        """Remove what crashed attempts left beside the target (half clones, repositories moved aside)."""
        removed = []
        with contextlib.suppress(FileNotFoundError), os.scandir(target.parent) as entries:
            for entry in entries:
                match = _LEFTOVER.match(entry.name)
                if match and match.group("name") == target.name:
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(Path(entry.path))
        return removed

    @staticmethod
    def _beside(target: Path, kind: str) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.parent / f".{target.name}.{kind}-{secrets.token_hex(6)}"

    def _place(self, made: Path, layout: Layout, replace: bool) -> None:
        """Rename a finished repository into place; with `replace`, the one there is moved aside, then removed."""
        target = layout.path
        if replace and (target.exists() or target.is_symlink()):
            aside = self._beside(target, "old")
            os.rename(target, aside)
            os.rename(made, target)
            shutil.rmtree(aside, ignore_errors=True)
            return
        if target.is_dir() and not self.exists(layout):
            with contextlib.suppress(OSError):
                target.rmdir()  # an empty folder is no repository; anything else stays for a person to see
            if target.exists():
                raise TaskFailed(f"{target} exists and is not a git repository: move it away, or migrate "
                                 "with force to replace it", retry=False)
        os.rename(made, target)

    # What tasks do

    def initialize(self, layout: Layout) -> None:
        """An empty repository (bare or regular, default branch main), made beside the target and renamed."""
        if self.exists(layout):
            return
        made = self._beside(layout.path, "incoming")
        try:
            kind = ["--bare"] if layout.bare else []
            argv = ["git", "init", "--quiet", *kind, f"--initial-branch={DEFAULT_BRANCH}", "--end-of-options",
                    str(made)]
            code, _out, err = self._call(argv, f"git init of {layout.path}")
            if code != 0:
                raise TaskFailed(f"git init of {layout.path} failed: {_last(err)}", retry=True)
            self._place(made, layout, replace=False)
        finally:
            shutil.rmtree(made, ignore_errors=True)

    def clone(self, layout: Layout, source: Source, replace: bool = False) -> None:
        """Clone the source (mirror, bare or regular) beside the target and rename it into place; a crash at
        any point leaves nothing under the real name but what was there before."""
        made = self._beside(layout.path, "incoming")
        kind = {"mirror": ["--mirror"], "bare": ["--bare"], "regular": []}[source.mode]
        try:
            argv = ["git", "-c", f"init.defaultBranch={DEFAULT_BRANCH}", "clone", "--quiet", *kind,
                    "--end-of-options", source.url, str(made)]
            self._network(argv, source, "cloning")
            self._place(made, layout, replace)
        finally:
            shutil.rmtree(made, ignore_errors=True)

    def fetch(self, layout: Layout, source: Source) -> None:
        """Bring the repository up to date with its source: a mirror takes every ref, a bare one branches
        and tags, a regular one fetches into origin/* and fast-forwards its checked-out branch."""
        specs = {
            "mirror": ["+refs/*:refs/*"],
            "bare": ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
            "regular": ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
        }[source.mode]
        argv = git_argv(layout.git_dir, ["fetch", "--quiet", "--prune", "--no-write-fetch-head", "--end-of-options",
                                         source.url, *specs])
        self._network(argv, source, "fetching from", layout.git_dir)
        if source.mode == "regular":
            self.fast_forward(layout)

    def follow_head(self, layout: Layout, source: Source) -> str | None:
        """Point a mirror's or a bare repository's HEAD at the branch the source's HEAD names (a fetch never
        moves it, so a source whose default branch was renamed or changed would keep the old one); the branch
        it now names, or None when nothing changed. A regular repository keeps its checked-out branch."""
        if source.mode == "regular":
            return None
        argv = git_argv(layout.git_dir, ["ls-remote", "--symref", "--end-of-options", source.url, "HEAD"])
        said = self._network(argv, source, "asking the default branch of")
        target = next((line[5:].rsplit("\t", 1)[0] for line in said.splitlines()
                       if line.startswith("ref: ") and line.endswith("\tHEAD")), "")
        if not target.startswith("refs/heads/"):
            return None
        if self._local(layout, ["symbolic-ref", "--quiet", "HEAD"], ok=(0, 1)).strip() == target:
            return None
        if not self._local(layout, ["rev-parse", "--quiet", "--verify", "--end-of-options", target], ok=(0, 1)):
            return None  # not fetched (a mirror takes every branch; a bare one may not)
        self._local(layout, ["symbolic-ref", "HEAD", target])
        return target.removeprefix("refs/heads/")

    def fast_forward(self, layout: Layout) -> None:
        """Move the checked-out branch to its origin/ twin; a branch with commits the source lacks is refused."""
        branch = self._local(layout, ["symbolic-ref", "--quiet", "--short", "HEAD"], ok=(0, 1)).strip()
        upstream = f"refs/remotes/origin/{branch}"
        if not branch or not self._local(layout, ["rev-parse", "--quiet", "--verify", upstream], ok=(0, 1)):
            return
        head = self._local(layout, ["rev-parse", "--quiet", "--verify", "HEAD^{commit}"], ok=(0, 1)).strip()
        if head and not self._ancestor(layout, "HEAD", upstream):
            if self._ancestor(layout, upstream, "HEAD"):
                return  # ahead of the source: nothing to take
            raise TaskFailed(f"the checked-out branch {branch} of {layout.path} has commits the source lacks "
                             f"(diverged from origin/{branch}): not fast-forwarded", retry=False)
        self._local(layout, ["merge", "--ff-only", "--quiet", upstream])

    def _ancestor(self, layout: Layout, older: str, newer: str) -> bool:
        argv = git_argv(layout.git_dir, ["merge-base", "--is-ancestor", older, newer])
        return self._call(argv, f"git merge-base in {layout.path}")[0] == 0

    # What is there

    def refs(self, layout: Layout) -> dict[str, str]:
        """Every ref and the object it names."""
        out = self._local(layout, ["for-each-ref", "--format=%(refname)%00%(objectname)"])
        return dict(line.split("\0", 1) for line in out.splitlines() if "\0" in line)

    def present(self, layout: Layout, shas: Iterable[str]) -> list[str]:
        """Those of `shas` the repository still holds (a forced re-clone or a rewrite drops some)."""
        wanted = sorted(set(shas))
        if not wanted:
            return []
        with _lines(wanted) as stdin:
            out = self._local(layout, ["cat-file", "--batch-check=%(objectname) %(objecttype)"], stdin=stdin)
        return [line.split()[0] for line in out.splitlines() if not line.endswith(" missing")]

    def count(self, layout: Layout, exclude: Sequence[str]) -> int:
        """Commits reachable from any ref and from none of `exclude`."""
        with _lines([f"^{sha}" for sha in exclude]) as stdin:
            return int(self._local(layout, ["rev-list", "--count", "--all", "--stdin"], stdin=stdin).strip() or 0)

    def snapshot(self, layout: Layout) -> Snapshot:
        """Branches (with the default: HEAD's, else main, else the newest) and the head, in one git process;
        `total_commits` is 0: the caller counts them, often from the history it just streamed."""
        out = self._local(layout, ["for-each-ref", "--sort=-committerdate",
                                   "--format=%(HEAD)%00%(refname:lstrip=2)%00%(objectname)", "refs/heads"])
        rows = [line.split("\0", 2) for line in out.splitlines() if line.count("\0") == 2]
        default = next((name for mark, name, _ in rows if mark == "*"), "")
        if not default and not rows:  # no branch yet: the one HEAD will make
            head = self._local(layout, ["symbolic-ref", "--quiet", "HEAD"], ok=(0, 1)).strip()
            default = head.removeprefix("refs/heads/") if head.startswith("refs/heads/") else ""
        return _described([(name, sha) for _, name, sha in rows], default)

    @contextlib.contextmanager
    def history(self, layout: Layout, exclude: Sequence[str],
                tips: Tips | None = None) -> Iterator[Iterator[dict[str, Any]]]:
        """The commits reachable from any ref and from none of `exclude`, newest first, read as git prints them
        (memory stays the same however long the history); leaving the block early stops git. With `tips` (and
        nothing excluded, so that every branch's tip is printed), the same process also tells the branches and
        HEAD's: what `snapshot` would read with another."""
        fields = _FIELDS + (tips is not None)
        shape = ["--decorate=full", _DECORATED] if tips is not None else [_LOG_FORMAT]
        argv = git_argv(layout.git_dir, ["log", "--all", "--stdin", "-z", "--no-color", *shape])
        with _lines([f"^{sha}" for sha in exclude]) as stdin:
            proc = self.runner.start(argv, git_env(), stdin)
            timer = self.runner.deadline(proc)
            done = False

            def commits() -> Iterator[dict[str, Any]]:
                nonlocal done
                assert proc.stdout is not None
                rest, got = b"", []
                while chunk := proc.stdout.read1(1 << 16):  # type: ignore[attr-defined]
                    parts = (rest + chunk).split(b"\0")
                    rest = parts.pop()
                    for part in parts:
                        got.append(part)
                        if len(got) == fields:
                            if tips is not None:
                                tips.saw(got[0], got[3], got[5])
                            yield _commit(got)
                            got = []
                done = True

            try:
                yield commits()
            finally:
                timer.cancel()
                if not done:
                    kill_group(proc)
                err = drain(proc)[1]
                self.runner.forget(proc)
        if done and proc.returncode != 0:
            raise TaskFailed(f"git log in {layout.path} failed (exit {proc.returncode}): {_last(err)}", retry=True)


class Tips:
    """Branch tips and HEAD's branch as `git log --decorate=full` prints them beside each commit."""

    def __init__(self) -> None:
        self.branches: dict[str, tuple[str, int]] = {}  # name: (sha, commit time)
        self.head = ""

    def saw(self, sha: bytes, when: bytes, refs: bytes) -> None:
        if not refs:
            return
        for ref in refs.decode("utf-8", "replace").split(", "):  # a ref name never holds a space
            if ref.startswith("HEAD -> "):
                ref = ref[8:]
                if ref.startswith("refs/heads/"):
                    self.head = ref[11:]
            if ref.startswith("refs/heads/"):
                self.branches[ref[11:]] = (sha.decode(), int(when or 0))

    def snapshot(self) -> Snapshot:
        newest = sorted(self.branches.items(), key=lambda item: (-item[1][1], item[0]))
        return _described([(name, sha) for name, (sha, _) in newest], self.head)


def _described(newest_first: list[tuple[str, str]], default: str) -> Snapshot:
    """Branches and the default: HEAD's, else (HEAD names no branch: a source whose HEAD dangles) main, else the
    newest; no branch at all keeps the one HEAD will make."""
    tips = dict(newest_first)
    if default not in tips and tips:
        default = "main" if "main" in tips else newest_first[0][0]
    branches = tuple(BranchState(name, tips[name], name == default) for name in sorted(tips))
    return Snapshot(branches, 0, tips.get(default, ""), default)


def _commit(fields: list[bytes]) -> dict[str, Any]:
    sha, name, email, when, subject = (f.decode("utf-8", "replace") for f in fields[:_FIELDS])
    return {"sha": sha, "author_name": name[:_NAME_MAX], "author_email": email[:_NAME_MAX],
            "subject": subject[:_SUBJECT_MAX], "committed_at": datetime.fromtimestamp(int(when or 0), UTC)}


def _last(stderr: bytes) -> str:
    lines = redact(stderr.decode("utf-8", "replace")).strip().splitlines()
    return lines[-1] if lines else "no message"


@contextlib.contextmanager
def _lines(lines: Sequence[str]) -> Iterator[IO[bytes]]:
    """Lines as a file git reads on its stdin (no pipe to keep filled while it answers)."""
    with tempfile.TemporaryFile() as handle:
        handle.write("".join(f"{line}\n" for line in lines).encode())
        handle.flush()
        handle.seek(0)
        yield handle

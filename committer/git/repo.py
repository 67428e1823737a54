"""Everything that runs git. Writes go through plumbing and fast-import; GitPython reads history."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from committer.core.errors import GitError
from committer.core.paths import COALESCE_ABOVE, coalesce, covered
from committer.git import index as gitindex

# Chunk size for pathspecs given on one command line.
_PATHSPEC_CHUNK = 200
# Above this many candidate paths, list the whole HEAD tree once instead of giving pathspecs.
_FULL_LISTING_ABOVE = 400
# fast-import allocates and frees zlib state for every object; with glibc's default trim threshold
# each free hands the heap top back to the kernel and the next object takes it again (two brk calls
# an object: 2.6 of 8 s in a 100k-file import). A larger pad and trim threshold keep the heap.
_FAST_IMPORT_ENV = {"MALLOC_TOP_PAD_": str(16 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}
# fast-import deltas each blob only against the previous blob of the stream, an unrelated file in a
# batch: 40 % of its CPU on a backfill for no smaller pack. A repack or a push finds real deltas.
_FAST_IMPORT_DEPTH = "--depth=0"
_PIPE_SIZE = 1 << 20
# git prints some paths relative to its working directory when that lies inside the work tree.
_NEUTRAL_CWD = "/"
_LOCK_FILES = ("index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock")
_STRIPPED_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
)


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every git process gets: C locale, no prompts, no user or system config."""
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
    env.update(
        LC_ALL="C",
        LANGUAGE="C",
        GIT_TERMINAL_PROMPT="0",
        GIT_LITERAL_PATHSPECS="1",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="safe.directory",
        GIT_CONFIG_VALUE_0="*",
    )
    if extra:
        env.update(extra)
    return env


def git_argv(git_dir: Path, args: Sequence[str], work_tree: Path | None = None) -> list[str]:
    """The argument list for one git command on our repository."""
    argv = ["git", "-c", "safe.directory=*", f"--git-dir={git_dir}"]
    if work_tree is not None:
        argv.append(f"--work-tree={work_tree}")
    argv.extend(args)
    return argv


# Every local git process is cut off after this many seconds (the daemon sets git_timeout).
_deadline = {"seconds": 300.0}
# Local git processes running now, by the thread that started them, so a stop can cut them short.
_running: dict[subprocess.Popen[bytes], int] = {}


def set_git_timeout(seconds: float) -> None:
    """The deadline of every local git process from now on."""
    _deadline["seconds"] = seconds


def terminate_running(thread: int | None = None) -> None:
    """Kill the local git processes one thread started (the main thread's by default), with their
    children. Safe in a signal handler: it takes no lock."""
    owner = threading.main_thread().ident if thread is None else thread
    for proc, started_by in tuple(_running.items()):
        if started_by == owner:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill git and whatever it started (a hook, a filter, a helper holding its pipes open)."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()


def _start(argv: list[str], env: dict[str, str], stdin: int | None) -> subprocess.Popen[bytes]:
    try:
        proc = subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=_NEUTRAL_CWD,
            start_new_session=True,
        )
    except OSError as exc:
        raise GitError(argv[4:], -1, str(exc)) from exc
    _running[proc] = threading.get_ident()
    return proc


def _drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """After a kill: collect what is left, but never wait long for pipes a stray child holds."""
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        proc.wait(timeout=5)
        return b"", b""


def run_git(
    git_dir: Path,
    args: Sequence[str],
    *,
    work_tree: Path | None = None,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command to completion within its deadline; every git but fast-import starts here."""
    argv = git_argv(git_dir, args, work_tree)
    limit = timeout if timeout is not None else _deadline["seconds"]
    proc = _start(argv, git_env(env), subprocess.PIPE if input is not None else subprocess.DEVNULL)
    try:
        stdout, stderr = proc.communicate(input, timeout=limit)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        _drain(proc)
        raise GitError(argv[4:], -1, f"timed out after {limit:g}s") from exc
    finally:
        _running.pop(proc, None)
    if proc.returncode < 0:
        raise GitError(argv[4:], proc.returncode, f"killed by signal {-proc.returncode}")
    if check and proc.returncode != 0:
        raise GitError(argv[4:], proc.returncode, stderr.decode("utf-8", "replace"))
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


@dataclass(frozen=True)
class TreeEntry:
    """One file of a tree: mode (100644, 100755, 120000, 160000) and blob id."""

    mode: str
    sha: str


_NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f"\\\x7f]')


def quote_path(path: str) -> bytes:
    """A path in fast-import's C-style quoting, which accepts every byte but NUL."""
    raw = os.fsencode(path)
    if _NEEDS_ESCAPE.search(raw) is None:
        return b'"' + raw + b'"'
    out = bytearray(b'"')
    for byte in raw:
        if byte == 0x22:
            out += b'\\"'
        elif byte == 0x5C:
            out += b"\\\\"
        elif byte == 0x0A:
            out += b"\\n"
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


class _Stream:
    """One `git fast-import` process, started on the first write and killed at the git deadline."""

    def __init__(self, git_dir: Path, options: Sequence[str]) -> None:
        self.git_dir = git_dir
        self.options = options
        self.proc: subprocess.Popen[bytes] | None = None
        self._timer: threading.Timer | None = None

    def _stdin(self) -> IO[bytes]:
        if self.proc is None:
            argv = git_argv(self.git_dir, ["fast-import", "--quiet", "--done", _FAST_IMPORT_DEPTH, *self.options])
            self.proc = _start(argv, git_env(_FAST_IMPORT_ENV), subprocess.PIPE)
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):  # a deeper pipe lets reading and importing overlap
                fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
            # A hung fast-import would block our writes for ever: the timer kills it at the deadline.
            self._timer = threading.Timer(_deadline["seconds"], _kill_group, args=(self.proc,))
            self._timer.daemon = True
            self._timer.start()
        assert self.proc.stdin is not None
        return self.proc.stdin

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        _running.pop(proc, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def send(self, *chunks: bytes) -> None:
        out = self._stdin()
        try:
            for chunk in chunks:
                out.write(chunk)
        except (BrokenPipeError, ValueError):
            proc, self.proc = self.proc, None
            stderr = b""
            if proc is not None:
                _kill_group(proc)
                _, stderr = _drain(proc)
                self._forget(proc)
            detail = stderr.decode("utf-8", "replace").strip() or "killed: timed out, or stopping"
            raise GitError(["fast-import"], -1, detail) from None

    def finish(self) -> bytes:
        """Send `done` and wait: the pack is in place (and a branch moved) only after this."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(b"done\n")
            stdout, stderr = proc.communicate()
        except (BrokenPipeError, ValueError):
            stdout, stderr = proc.communicate()
        self.proc = None
        self._forget(proc)
        if proc.returncode < 0:
            raise GitError(["fast-import"], proc.returncode, "killed: timed out or the daemon is stopping")
        if proc.returncode != 0:
            raise GitError(["fast-import"], proc.returncode, stderr.decode("utf-8", "replace"))
        return stdout

    def abort(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _kill_group(proc)
            _drain(proc)
            self._forget(proc)


class FastImport:
    """One `git fast-import` stream: blobs as they are found, then its commits.

    One process, so a backfill lands in one pack: a push sends it as it is, because git does not
    retry deltas between objects of one pack (a backfill split over two packs by two parallel
    imports pushed in 11 s instead of 3.5 s for 100k files, for half a second less importing).
    """

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir
        self._stream = _Stream(git_dir, ["--cat-blob-fd=1"])
        self._marks = 0

    def blob(self, data: bytes) -> str:
        """Send one blob; returns the mark to refer to it in the commit."""
        self._marks += 1
        mark = f":{self._marks}"
        self._stream.send(b"blob\nmark %s\ndata %d\n" % (mark.encode(), len(data)), data, b"\n")
        return mark

    def blob_nomark(self, data: bytes) -> None:
        """Send one blob without a mark: commits name it by its id (no mark table in fast-import)."""
        self._stream.send(b"blob\ndata %d\n" % len(data), data, b"\n")

    def finish_blobs(self) -> None:
        """End a stream that holds blobs only: they are in a pack now, no reference moved."""
        self._stream.finish()

    def write_commit(
        self,
        ref: str,
        parent: str | None,
        identity: tuple[str, str],
        message: str,
        deletes: Sequence[str],
        modifies: Sequence[tuple[str, str, str]],
        when: int | None = None,
    ) -> str:
        """Write one commit on `parent` (a commit id, or the mark of a commit of this stream); its mark."""
        self._marks += 1
        mark = f":{self._marks}"
        stamp = f"{identity[0]} <{identity[1]}> {when or int(time.time())} +0000".encode()
        body = message.encode("utf-8")
        lines = [
            b"commit %s\nmark %s\n" % (ref.encode(), mark.encode()),
            b"author %s\ncommitter %s\n" % (stamp, stamp),
            b"data %d\n%s\n" % (len(body), body),
        ]
        if parent:
            lines.append(b"from %s\n" % parent.encode())
        lines += [b"D %s\n" % quote_path(path) for path in deletes]
        lines += [b"M %s %s %s\n" % (m.encode(), ref_.encode(), quote_path(p)) for m, ref_, p in modifies]
        lines.append(b"\n")
        self._stream.send(b"".join(lines))
        return mark

    def finish(self, mark: str) -> str:
        """End the stream (the branch moves now, not before) and return the id of the commit `mark`."""
        self._stream.send(b"get-mark %s\n" % mark.encode())
        sha = self._stream.finish().decode().strip()
        if len(sha) != 40:
            raise GitError(["fast-import"], 0, f"unexpected answer {sha!r}")
        return sha

    def abort(self) -> None:
        """Drop the stream: without `done`, fast-import updates no reference."""
        self._stream.abort()

    @property
    def started(self) -> bool:
        return self._stream.proc is not None


class GitRepo:
    """The bare repository whose work tree is the data directory."""

    def __init__(self, git_dir: Path, data_dir: Path, branch: str) -> None:
        self.git_dir = git_dir
        self.data_dir = data_dir
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        # The data directory's .bmignore as git reads it: a copy the path filter keeps (never the file itself).
        self.bmignore_copy = git_dir / "info" / "bmignore"

    def git(
        self, *args: str, work_tree: bool = False, **kwargs: object
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git on this repository; work_tree=True points it at the data directory."""
        tree = self.data_dir if work_tree else None
        return run_git(self.git_dir, args, work_tree=tree, **kwargs)  # type: ignore[arg-type]

    def exists(self) -> bool:
        """Whether a repository is already there."""
        return (self.git_dir / "HEAD").is_file() and (self.git_dir / "objects").is_dir()

    def init(self) -> None:
        """Create the bare repository with its branch."""
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        run_git(self.git_dir, ["init", "--quiet", "--bare", f"--initial-branch={self.branch}"])

    def configure(self, identity: tuple[str, str], exclude_lines: Sequence[str]) -> None:
        """Settings every start re-applies: durability, identity, ignores, our branch as HEAD."""
        config = {
            "core.fsync": "committed",
            "core.fsyncMethod": "fsync",
            "core.logAllRefUpdates": "always",
            "core.excludesFile": str(self.bmignore_copy),
            "core.quotePath": "false",
            "user.name": identity[0],
            "user.email": identity[1],
            "gc.autoDetach": "false",
            "push.default": "current",
        }
        current = self.git("config", "--local", "--list", check=False).stdout.decode("utf-8", "replace")
        have = dict(line.split("=", 1) for line in current.splitlines() if "=" in line)
        for key, value in config.items():
            if have.get(key.lower()) != value:
                self.git("config", "--local", key, value)
        info = self.git_dir / "info"
        info.mkdir(exist_ok=True)
        text = "# written by committer; edit .bmignore in the data directory instead\n"
        text += "\n".join(exclude_lines) + "\n"
        exclude = info / "exclude"
        if not exclude.exists() or exclude.read_text(errors="replace") != text:
            tmp = exclude.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, exclude)
        head = (self.git_dir / "HEAD").read_text().strip()
        if head != f"ref: {self.ref}":
            self.git("symbolic-ref", "HEAD", self.ref)

    def head(self) -> str | None:
        """The branch's commit id, or None before the first commit."""
        proc = self.git("rev-parse", "-q", "--verify", f"{self.ref}^{{commit}}", check=False)
        sha = proc.stdout.decode().strip()
        return sha or None

    def current_branch(self) -> str | None:
        """The branch HEAD names (the one this repository was last used with), or None."""
        try:
            head = (self.git_dir / "HEAD").read_text().strip()
        except OSError:
            return None
        prefix = "ref: refs/heads/"
        return head[len(prefix) :] if head.startswith(prefix) else None

    def clear_stale_locks(self) -> list[Path]:
        """Remove lock files a dead git process left; call only while holding the instance lock."""
        removed = []
        candidates = [self.git_dir / name for name in _LOCK_FILES]
        refs = self.git_dir / "refs"
        if refs.is_dir():
            candidates.extend(refs.rglob("*.lock"))
        for path in candidates:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
        return removed

    def ls_tree(self, rev: str | None, paths: Sequence[str] | None = None) -> dict[str, TreeEntry]:
        """Files of `rev` at or under `paths` (all files when paths is None)."""
        if rev is None:
            return {}
        if paths is None or len(paths) > _FULL_LISTING_ABOVE:
            entries = dict(self._ls_tree(rev, []))
            if paths is None:
                return entries
            wanted = set(paths)
            return {p: e for p, e in entries.items() if _under_any(p, wanted)}
        found: dict[str, TreeEntry] = {}
        for start in range(0, len(paths), _PATHSPEC_CHUNK):
            found.update(self._ls_tree(rev, paths[start : start + _PATHSPEC_CHUNK]))
        return found

    @contextlib.contextmanager
    def ls_tree_stream(self, rev: str, paths: Sequence[str]) -> Iterator[Iterator[tuple[str, TreeEntry]]]:
        """HEAD's files at or under `paths` ([''] for all), in git's order, read as git prints them: a tree
        of a million files is never whole in memory. Past _FULL_LISTING_ABOVE paths the whole tree is
        listed and filtered (thousands of pathspecs cost git more than a full listing)."""
        wanted = set(paths)
        whole = "" in wanted or len(paths) > _FULL_LISTING_ABOVE
        args = ["ls-tree", "-r", "-z", "--full-tree", rev, "--", *([] if whole else paths)]

        def entries(records: Iterator[bytes]) -> Iterator[tuple[str, TreeEntry]]:
            for record in records:
                meta, _, raw_path = record.partition(b"\t")
                path = os.fsdecode(raw_path)
                if whole and "" not in wanted and not _under_any(path, wanted):
                    continue
                mode, _kind, sha = meta.decode().split(" ")
                yield path, TreeEntry(mode, sha)

        with self.stream(args) as records:
            yield entries(records)

    @contextlib.contextmanager
    def stream(self, args: Sequence[str], work_tree: bool = False) -> Iterator[Iterator[bytes]]:
        """The NUL-separated records a git command prints, read as it prints them, within the git deadline;
        leaving early kills it. A failure is raised when the block ends."""
        argv = git_argv(self.git_dir, args, self.data_dir if work_tree else None)
        proc = _start(argv, git_env(), subprocess.DEVNULL)
        timer = threading.Timer(_deadline["seconds"], _kill_group, args=(proc,))
        timer.daemon = True
        timer.start()
        finished = False

        def records() -> Iterator[bytes]:
            nonlocal finished
            assert proc.stdout is not None
            rest = b""
            while chunk := proc.stdout.read1(1 << 16):  # type: ignore[attr-defined]
                parts = (rest + chunk).split(b"\0")
                rest = parts.pop()
                yield from parts
            if rest:
                yield rest
            finished = True

        try:
            yield records()
        finally:
            timer.cancel()
            if not finished:
                _kill_group(proc)
            stderr = _drain(proc)[1]
            _running.pop(proc, None)
        if finished and proc.returncode != 0:
            raise GitError(argv[4:], proc.returncode, stderr.decode("utf-8", "replace"))

    def _ls_tree(self, rev: str, paths: Sequence[str]) -> Iterator[tuple[str, TreeEntry]]:
        out = self.git("ls-tree", "-r", "-z", "--full-tree", rev, "--", *paths).stdout
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, _kind, sha = meta.decode().split(" ")
            yield os.fsdecode(raw_path), TreeEntry(mode, sha)

    def changed_paths(self, most: int = COALESCE_ABOVE) -> set[str]:
        """Paths where the data directory may differ from HEAD, from git's stat-cached status.

        Ignored entries are listed too: committer's own filter decides, so a .gitignore inside the
        data directory (which git would honour) changes nothing about what is committed. Past `most`
        paths they are folded into their directories (the commit step walks those), so a status of a
        million changed files is never held whole.
        """
        args = ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching", "--no-renames",
                "--ignore-submodules=none"]
        paths: set[str] = set()
        folded = False
        with self.stream(args, work_tree=True) as records:
            for record in records:
                if len(record) > 3:
                    path = os.fsdecode(record[3:]).rstrip("/")
                    if folded and covered(path, paths):
                        continue
                    paths.add(path)
                    if len(paths) > most:
                        paths, folded = coalesce(paths, most // 2), True
        return paths

    def sync_index(self, hints: Iterable[tuple[str, bytes]] | None = None) -> None:
        """Make the index match HEAD: the stat cache the next reconcile compares the data directory with.

        `hints`: the stat data the commit step took as it read each file (ChangeSet.hints()), in path
        order; other entries keep the old index's stat data while their blob is unchanged, the rest get
        none (the next reconcile reads those files again). Written as a stream (committer.gitindex).
        """
        head = self.head()
        if head is None:
            return
        with gitindex.Index(self.git_dir / "index") as old, self.ls_tree_stream(head, [""]) as entries:
            rows = ((path, (e.mode, e.sha)) for path, e in entries)
            written = gitindex.write(self.git_dir, rows, hints or (), old.entries())
        if written is None:
            raise GitError(["index"], -1, f"{self.git_dir / 'index.lock'} exists: another git is writing the index")

    def resolve(self, rev: str) -> str | None:
        """The commit a revision names: a sha, tag, `main~3`, `main@{2 hours ago}`, or a date."""
        proc = self.git("rev-parse", "-q", "--verify", "--end-of-options", f"{rev}^{{commit}}", check=False)
        sha = proc.stdout.decode().strip()
        if proc.returncode == 0 and sha:
            return sha
        when = _as_date(rev)
        if when is None or self.head() is None:
            return None
        proc = self.git("rev-list", "-1", f"--before={when}", self.ref, check=False)
        sha = proc.stdout.decode().strip()
        return sha if proc.returncode == 0 and sha else None

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """The content of each blob, through one `git cat-file --batch`."""
        if not shas:
            return {}
        out = self.git("cat-file", "--batch", input="".join(f"{s}\n" for s in shas).encode()).stdout
        blobs: dict[str, bytes] = {}
        pos = 0
        while pos < len(out):
            header_end = out.index(b"\n", pos)
            sha, _kind, size = out[pos:header_end].decode().split(" ")
            start = header_end + 1
            blobs[sha] = out[start : start + int(size)]
            pos = start + int(size) + 1
        return blobs

    def renames(self, shas: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Commit -> the files it moved unchanged (old path, new path), through one `git diff-tree`."""
        if not shas:
            return {}
        out = self.git("diff-tree", "--stdin", "-r", "-z", "-M100%", "--diff-filter=R",
                       input="".join(f"{s}\n" for s in shas).encode()).stdout
        found: dict[str, list[tuple[str, str]]] = {}
        fields = out.split(b"\0")
        current = ""
        index = 0
        while index < len(fields):
            field = fields[index]
            if field.startswith(b":") and index + 2 < len(fields):
                found.setdefault(current, []).append((os.fsdecode(fields[index + 1]), os.fsdecode(fields[index + 2])))
                index += 3
                continue
            if len(field) == 40:
                current = field.decode()
            index += 1
        return found

    def size(self) -> dict[str, int]:
        """Bytes on disk and number of objects of the repository (git count-objects)."""
        out = self.git("count-objects", "-v", check=False).stdout.decode()
        fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        number = {k: int(v) for k, v in fields.items() if v.strip().isdigit()}
        return {
            "repo_size_bytes": (number.get("size", 0) + number.get("size-pack", 0)) * 1024,
            "objects": number.get("count", 0) + number.get("in-pack", 0),
            "packs": number.get("packs", 0),
            "loose": number.get("count", 0),
        }

    def last_commit(self) -> tuple[str, str] | None:
        """(sha, ISO 8601 committer date in UTC) of HEAD, or None."""
        proc = self.git("log", "-1", "--format=%H %ct", self.ref, check=False)
        parts = proc.stdout.decode().split()
        if proc.returncode != 0 or len(parts) != 2:
            return None
        return parts[0], _iso_utc(int(parts[1]))


_AGO = re.compile(r"^\s*(\d+)\s+(second|minute|hour|day|week|month|year)s?\s+ago\s*$", re.IGNORECASE)


def _as_date(text: str) -> str | None:
    """A date for --before: ISO 8601 (a date, or a date and time) or `N units ago`; else None.

    git's own date parser takes almost any text as "now", so a mistyped revision must not reach it.
    """
    if _AGO.match(text):
        return text.strip()
    try:
        parsed = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # local time, as a person means it
    return parsed.isoformat()


def _under_any(path: str, wanted: set[str]) -> bool:
    if path in wanted:
        return True
    parent = path
    while "/" in parent:
        parent = parent.rsplit("/", 1)[0]
        if parent in wanted:
            return True
    return False


def _iso_utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def history(repo: GitRepo, path: str | None, max_count: int) -> Iterator[tuple[str, int, str]]:
    """(sha, commit time, message) of the branch, newest first, optionally for one path."""
    import git  # GitPython: reading history through its object model

    handle = git.Repo(repo.git_dir)
    handle.git.update_environment(**git_env())
    try:
        if repo.head() is None:
            return
        paths = [path] if path else []
        for commit in handle.iter_commits(repo.ref, paths=paths, max_count=max_count):
            text = commit.message if isinstance(commit.message, str) else commit.message.decode()
            yield commit.hexsha, commit.committed_date, text
    finally:
        handle.close()

"""The repository: every git through its runner. Writes go through plumbing and fast-import; GitPython reads
history (committer.git.gitpython, its git run by the same runner)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from committer.core import clock
from committer.core.errors import CommitterError, GitError
from committer.core.paths import COALESCE_ABOVE, coalesce, covered, parse_display
from committer.core.settings import Settings
from committer.git import index as gitindex
from committer.git import revs
from committer.git.objects import TreeEntry
from committer.git.runner import GitRunner

# Chunk size for pathspecs given on one command line.
_PATHSPEC_CHUNK = 200
# Above this many candidate paths, list the whole HEAD tree once instead of giving pathspecs.
_FULL_LISTING_ABOVE = 400
# A whole listing of a tree past this many files goes in parts, each a group of its top-level entries: one
# `ls-tree -r` keeps every tree it read (70 MB for a million files), a part only its own.
_LISTING_IN_PARTS_ABOVE = 200_000
_LISTING_PARTS = 8
# git prints some paths relative to its working directory when that lies inside the work tree.
_LOCK_FILES = ("index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock")
class GitRepo:
    """The bare repository whose work tree is the data directory."""

    def __init__(self, git_dir: Path, data_dir: Path, branch: str, runner: GitRunner | None = None) -> None:
        self.git_dir = git_dir
        self.data_dir = data_dir
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        self.runner = runner or GitRunner()
        # The data directory's .bmignore as git reads it: a copy the path filter keeps (never the file itself).
        self.bmignore_copy = git_dir / "info" / "bmignore"

    @classmethod
    def of(cls, settings: Settings, runner: GitRunner | None = None) -> GitRepo:
        """The repository `settings` name; its git processes bounded by git_timeout unless a runner is given."""
        return cls(settings.git_dir, settings.data_dir, settings.branch, runner or GitRunner(settings.git_timeout))

    def git(
        self, *args: str, work_tree: bool = False, input: bytes | None = None, env: Mapping[str, str] | None = None,
        timeout: float | None = None, check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git on this repository through its runner; work_tree=True points it at the data directory."""
        tree = self.data_dir if work_tree else None
        return self.runner.run(self.git_dir, args, work_tree=tree, input=input, env=env, timeout=timeout, check=check)

    def exists(self) -> bool:
        """Whether a repository is already there."""
        return (self.git_dir / "HEAD").is_file() and (self.git_dir / "objects").is_dir()

    def init(self) -> None:
        """Create the bare repository with its branch."""
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--bare", f"--initial-branch={self.branch}")

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
        parts = self._listing_parts(rev) if whole else [list(paths)]

        def entries() -> Generator[tuple[str, TreeEntry], None, None]:
            for part in parts:  # consecutive groups of top-level entries: together, git's order
                with self.stream(["ls-tree", "-r", "-z", "--full-tree", rev, "--", *part]) as records:
                    for record in records:
                        meta, _, raw_path = record.partition(b"\t")
                        path = os.fsdecode(raw_path)
                        if whole and "" not in wanted and not _under_any(path, wanted):
                            continue
                        mode, _kind, sha = meta.decode().split(" ")
                        yield path, TreeEntry(mode, sha)

        listed = entries()
        try:
            yield listed
        finally:
            listed.close()  # left early: the running ls-tree is stopped

    def _listing_parts(self, rev: str) -> list[list[str]]:
        """Pathspecs that list the whole tree a part at a time: [[]] (one listing) unless the index says the
        tree is large; then its top-level entries in up to _LISTING_PARTS consecutive groups."""
        if gitindex.entry_count(self.git_dir / "index") <= _LISTING_IN_PARTS_ABOVE:
            return [[]]
        with self.stream(["ls-tree", "-z", "--name-only", "--full-tree", rev]) as records:
            top = [os.fsdecode(record) for record in records if record]
        size = -(-len(top) // _LISTING_PARTS)
        return [top[start:start + size] for start in range(0, len(top), size)] or [[]]

    def stream(
        self, args: Sequence[str], work_tree: bool = False, seconds: float | None = None
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        """The NUL-separated records a git command prints, read as it prints them (GitRunner.stream)."""
        return self.runner.stream(self.git_dir, args, self.data_dir if work_tree else None, seconds)

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
        """The commit a revision names: a sha, tag, `main~3`, `main@{2 hours ago}`, or a date (ISO 8601, a
        bare day meaning its end, `N units ago`); None when it names nothing. A date after now or before
        the first commit raises revs.OutOfHistory, which names the newest or oldest version."""
        return revs.resolve(self, rev)

    def named(self, rel: str, rev: str | None = None) -> str:
        """The path a person typed: as typed when the data directory, HEAD or `rev` (the revision the command
        reads, when it names one) has it, else read as core.paths.display_path shows names (`bad\\xff.md`
        for a name that is not UTF-8)."""
        if "\\" not in rel:
            return rel
        shown = parse_display(rel)
        if shown == rel or os.path.lexists(os.path.join(self.data_dir, rel)) or self.ls_tree(self.head(), [rel]):
            return rel
        try:
            at = self.resolve(rev) if rev else None
        except CommitterError:  # a date outside the history: the command says so itself
            at = None
        return rel if at and self.ls_tree(at, [rel]) else shown

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
        """Commit -> the files it moved (old path, new path; git's rename rule, 50 % similar, as committer
        pairs moves with edits), through one `git diff-tree`."""
        if not shas:
            return {}
        out = self.git("diff-tree", "--stdin", "-r", "-z", "-M", "--diff-filter=R",
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
        parts = proc.stdout.decode("ascii", "replace").split()
        if proc.returncode != 0 or len(parts) != 2 or not parts[1].isdigit():
            return None
        return parts[0], clock.iso(int(parts[1]))


def _under_any(path: str, wanted: set[str]) -> bool:
    if path in wanted:
        return True
    parent = path
    while "/" in parent:
        parent = parent.rsplit("/", 1)[0]
        if parent in wanted:
            return True
    return False


def history(repo: GitRepo, path: str | None, max_count: int) -> Iterator[tuple[str, int, str]]:
    """(sha, commit time, message) of the branch, newest first, optionally for one path."""
    # GitPython reads the commits (its object model), its git run by the repository's runner; imported
    # here because only `log` needs it and importing it costs a tenth of a second.
    from committer.git import gitpython

    if repo.head() is None:
        return
    with gitpython.opened(repo.git_dir, repo.runner) as handle:
        paths = [path] if path else []
        for commit in handle.iter_commits(repo.ref, paths=paths, max_count=max_count):
            text = commit.message if isinstance(commit.message, str) else commit.message.decode()
            yield commit.hexsha, commit.committed_date, text

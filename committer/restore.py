"""Put a file or folder back as it was at a revision, as a new audited commit."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from committer import lfs, logs
from committer.changes import MODE_EXEC, MODE_LINK, blob_id
from committer.errors import CommitterError, ConfigError
from committer.gitrepo import TreeEntry
from committer.pipeline import Pipeline

log = logs.get("committer.restore")


@dataclass(frozen=True)
class Action:
    """One change to the data directory: write an entry of the revision, or delete a file."""

    kind: str
    path: str
    entry: TreeEntry | None = None


def normalize(path: str) -> str:
    """A path relative to the data directory; '' is the whole directory."""
    parts = [p for p in Path(path).as_posix().split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfigError("path", f"{path} points outside the data directory")
    return "/".join(parts)


def plan(pipeline: Pipeline, rel: str, rev: str) -> tuple[str, list[Action]]:
    """(the commit `rev` names, what must change on disk to make `rel` as it was there)."""
    repo = pipeline.repo
    source = repo.resolve(rev)
    if source is None:
        raise ConfigError("--to", f"unknown revision {rev!r}: give a commit, a tag, or a date git reads")
    target = repo.ls_tree(source, [rel] if rel else None)
    current = _on_disk(pipeline, rel)
    if not target and not current and not repo.ls_tree(pipeline.head, [rel] if rel else None):
        raise ConfigError("path", f"{rel or '.'} is neither in {rev} nor in the data directory")
    actions = [
        Action("write", path, entry)
        for path, entry in sorted(target.items())
        if current.get(path) != (entry.mode, entry.sha) and not pipeline.pfilter.ignored(path)
    ]
    actions += [Action("delete", path) for path in sorted(set(current) - set(target))]
    return source, actions


def _on_disk(pipeline: Pipeline, rel: str) -> dict[str, tuple[str, str]]:
    """Files under rel on disk, with the mode and blob id they would be committed with."""
    root = pipeline.repo.data_dir
    found: dict[str, tuple[str, str]] = {}
    start = root / rel if rel else root
    if start.is_symlink() or start.is_file():
        candidates = [rel]
    else:
        candidates = []
        for directory, dirs, files in os.walk(start):
            prefix = os.path.relpath(directory, root)
            prefix = "" if prefix == "." else prefix.replace(os.sep, "/")
            dirs[:] = [d for d in dirs if not pipeline.pfilter.ignored(_join(prefix, d), is_dir=True)]
            candidates += [_join(prefix, f) for f in files]
    for path in candidates:
        if pipeline.pfilter.ignored(path):
            continue
        full = root / path
        try:
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[path] = (MODE_LINK, blob_id(os.fsencode(os.readlink(full))))
            elif stat.S_ISREG(st.st_mode):
                mode = MODE_EXEC if st.st_mode & stat.S_IXUSR else "100644"
                found[path] = (mode, blob_id(full.read_bytes()))
        except OSError:
            continue
    return found


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def apply(pipeline: Pipeline, actions: list[Action]) -> list[str]:
    """Write the actions into the data directory, each file atomically; returns the paths changed."""
    repo = pipeline.repo
    blobs = repo.read_blobs(sorted({a.entry.sha for a in actions if a.entry is not None}))
    changed = []
    for action in actions:
        full = repo.data_dir / action.path
        if action.kind == "delete":
            full.unlink(missing_ok=True)
        else:
            assert action.entry is not None
            write_entry(repo.git_dir, full, action.entry, blobs[action.entry.sha])
        changed.append(action.path)
    return changed


def write_entry(
    git_dir: Path, full: Path, entry: TreeEntry, content: bytes, expect: Callable[[], bool] | None = None
) -> bool:
    """Write one tree entry at `full` atomically (a temporary file, then a rename).

    `expect`, checked after the temporary file is complete and just before the rename, can refuse the
    replacement (a file changed meanwhile); the answer is then False and nothing was replaced.
    """
    full.parent.mkdir(parents=True, exist_ok=True)
    tmp = full.parent / f".#committer-restore-{secrets.token_hex(6)}.tmp"
    try:
        if entry.mode == MODE_LINK:
            os.symlink(os.fsdecode(content), tmp)
        else:
            _write_file(tmp, _real_content(git_dir, content), 0o755 if entry.mode == MODE_EXEC else 0o644)
        if full.is_dir() and not full.is_symlink():
            raise CommitterError(f"{full} is a directory now; move it away to write the file")
        if expect is not None and not expect():
            return False
        os.replace(tmp, full)
        return True
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _real_content(git_dir: Path, content: bytes) -> bytes | Path:
    """An LFS pointer stands for the object in the local store, when it is there."""
    parsed = lfs.parse(content) if lfs.is_pointer(content) else None
    if parsed is not None:
        obj = lfs.object_path(git_dir, parsed[0])
        if obj.is_file():
            return obj
    return content


def _write_file(path: Path, content: bytes | Path, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as out:
        if isinstance(content, Path):
            with content.open("rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        else:
            out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, mode)


def restore(pipeline: Pipeline, path: str, rev: str, dry_run: bool = False) -> dict[str, Any]:
    """Plan, and unless dry_run, apply and commit with op restore and the source revision."""
    rel = normalize(path)
    source, actions = plan(pipeline, rel, rev)
    answer: dict[str, Any] = {
        "path": rel or ".",
        "rev": rev,
        "source": source,
        "dry_run": dry_run,
        "actions": [{"action": a.kind, "path": a.path} for a in actions],
        "sha": None,
    }
    if dry_run or not actions:
        return answer
    changed = apply(pipeline, actions)
    result = pipeline.commit(
        changed, op="restore", extra={"source": source, "rev": rev, "path": rel or "."}, guarded=False
    )
    log.info("restored", path=rel or ".", rev=rev, source=source, files=len(changed), sha=result.sha)
    answer["sha"] = result.sha
    return answer

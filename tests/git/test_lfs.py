"""Large files through real git-lfs: store, commit with fast-import, push, then clone and pull."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from committer.core.errors import CommitterError
from committer.git import lfs
from committer.git.repo import GitRepo
from committer.git.runner import git_env

pytestmark = pytest.mark.skipif(
    not lfs.available(), reason="git-lfs is not installed (apt-get install git-lfs)"
)

MIB = 1 << 20
BIG = 11 * MIB
# What `git lfs install` writes into a user's ~/.gitconfig.
USER_LFS_CONFIG = """\
[filter "lfs"]
\tclean = git-lfs clean -- %f
\tsmudge = git-lfs smudge -- %f
\tprocess = git-lfs filter-process
\trequired = true
"""


def run(*args: str, cwd: Path | str = "/", env: dict[str, str] | None = None) -> bytes:
    """Run a command (committer's git environment unless told), fail the test on a non-zero exit."""
    proc = subprocess.run(args, cwd=cwd, env=env or git_env(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc.stdout


def git(git_dir: Path, *args: str) -> bytes:
    return run("git", "-c", "safe.directory=*", f"--git-dir={git_dir}", *args)


def bare(path: Path) -> Path:
    run("git", "init", "--quiet", "--bare", "--initial-branch=main", str(path))
    return path


def make_file(path: Path, size: int) -> str:
    """A file of random bytes written a chunk at a time; returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, MIB))
            sha.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return sha.hexdigest()


def file_sha(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(MIB):
            sha.update(chunk)
    return sha.hexdigest()


def store_path(git_dir: Path, path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return lfs.store(git_dir, fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def fast_import(git_dir: Path, files: dict[str, bytes], message: str = "add files") -> str:
    """One commit on main with these blobs (mode 100644), written as committer writes: fast-import."""
    stream = bytearray()
    for mark, data in enumerate(files.values(), start=1):
        stream += b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data)
    body = message.encode()
    stream += b"commit refs/heads/main\nmark :%d\n" % (len(files) + 1)
    stream += b"committer committer <committer@localhost> 1700000000 +0000\n"
    stream += b"data %d\n%s\n" % (len(body), body)
    for mark, path in enumerate(files, start=1):
        stream += b"M 100644 :%d %s\n" % (mark, path.encode())
    stream += b"\ndone\n"
    proc = subprocess.run(
        ["git", "-c", "safe.directory=*", f"--git-dir={git_dir}", "fast-import", "--quiet", "--done"],
        input=bytes(stream), env=git_env(), capture_output=True, check=False, cwd="/",
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return git(git_dir, "rev-parse", "refs/heads/main").decode().strip()


def push(git_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    """The push committer's Remote.run makes, in committer's git environment (no global config)."""
    return subprocess.run(
        ["git", "-c", "safe.directory=*", f"--git-dir={git_dir}", "push", "--porcelain", url,
         "main:refs/heads/main", "refs/tags/*:refs/tags/*"],
        env=git_env({"GIT_TERMINAL_PROMPT": "0"}), capture_output=True, text=True, check=False, cwd="/",
    )


def user_env(home: Path) -> dict[str, str]:
    """A person's shell: their own HOME and a ~/.gitconfig after `git lfs install`, no GIT_* leftovers."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text(USER_LFS_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    env["LC_ALL"] = "C"
    return env


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of everything under root but `skip`."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in [*dirnames, *filenames]:
            st = os.lstat(Path(dirpath, name))
            found[str(Path(dirpath, name))] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    git_dir = bare(tmp_path / "state" / "knowledge.git")
    lfs.prepare(GitRepo(git_dir, git_dir, "main"))
    yield git_dir


# --- the whole path: 11 MiB through LFS, pushed to file://, restored by clone + git lfs pull -------------


def test_large_file_is_pushed_with_the_branch_and_restored_by_clone_and_pull(
    tmp_path: Path, repo: Path
) -> None:
    data = tmp_path / "data"
    big = data / "media" / "big video.bin"
    want = make_file(big, BIG)
    (data / "note.md").write_bytes(b"# a note\n")
    data_before = snapshot(data, skip=data / "nothing")

    fd = os.open(big, os.O_RDONLY | os.O_CLOEXEC)
    try:
        tracemalloc.start()
        try:
            blob = lfs.store(repo, fd, BIG)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        os.close(fd)
    assert peak < 3 * MIB, f"store held {peak} bytes at once for an {BIG}-byte file"
    assert blob == f"version https://git-lfs.github.com/spec/v1\noid sha256:{want}\nsize {BIG}\n".encode()
    assert file_sha(lfs.object_path(repo, want)) == want

    head = fast_import(repo, {"media/big video.bin": blob, "note.md": b"# a note\n"})
    assert git(repo, "cat-file", "blob", f"{head}:media/big video.bin") == blob
    lfs.write_attributes(repo, ["media/big video.bin"])

    remote = bare(tmp_path / "remote.git")
    result = push(repo, remote.as_uri())
    assert result.returncode == 0, result.stderr
    assert "refs/heads/main:refs/heads/main" in result.stdout
    assert git(remote, "rev-parse", "main").decode().strip() == head
    assert file_sha(lfs.object_path(remote, want)) == want
    assert snapshot(data, skip=data / "nothing") == data_before, "the data directory was written to"

    env = user_env(tmp_path / "home")
    # Without any attributes, in the tree or in the clone: git lfs pull still restores the bytes.
    plain = tmp_path / "restore-plain"
    run("git", "clone", "--quiet", remote.as_uri(), str(plain), env=env)
    assert lfs.is_pointer((plain / "media" / "big video.bin").read_bytes())
    run("git", "lfs", "pull", cwd=plain, env=env)
    assert file_sha(plain / "media" / "big video.bin") == want
    assert (plain / "note.md").read_bytes() == b"# a note\n"

    # With the repository's info/attributes as the clone's own, the clone is also clean afterwards.
    clean = tmp_path / "restore-clean"
    run("git", "clone", "--quiet", remote.as_uri(), str(clean), env=env)
    (clean / ".git" / "info" / "attributes").write_bytes((repo / "info" / "attributes").read_bytes())
    run("git", "lfs", "pull", cwd=clean, env=env)
    assert file_sha(clean / "media" / "big video.bin") == want
    assert run("git", "status", "--porcelain", cwd=clean, env=env) == b""


def test_push_to_a_plain_path_remote_uploads_the_objects(tmp_path: Path, repo: Path) -> None:
    """git-lfs refuses a remote without a scheme; the hook hands it a file:// URL instead."""
    src = tmp_path / "data" / "f.bin"
    want = make_file(src, 4096)
    head = fast_import(repo, {"f.bin": store_path(repo, src)})
    remote = bare(tmp_path / "backups dir" / "odd 100%#?[x].git")
    result = push(repo, str(remote))
    assert result.returncode == 0, result.stderr
    assert git(remote, "rev-parse", "main").decode().strip() == head
    assert file_sha(lfs.object_path(remote, want)) == want


def test_a_push_of_a_pointer_whose_object_is_missing_fails(tmp_path: Path, repo: Path) -> None:
    """The store holds one object (a store that is empty was never written, and git-lfs is left out)."""
    src = tmp_path / "data" / "kept.bin"
    make_file(src, 1000)
    fd = os.open(src, os.O_RDONLY)
    try:
        kept = lfs.store(repo, fd, 1000)
    finally:
        os.close(fd)
    ghost = lfs.pointer("ab" * 32, 12 * MIB)
    fast_import(repo, {"ghost.bin": ghost, "kept.bin": kept})
    remote = bare(tmp_path / "remote.git")
    result = push(repo, remote.as_uri())
    assert result.returncode != 0
    assert run("git", f"--git-dir={remote}", "for-each-ref") == b"", "the branch must not reach the remote"


# --- store ---------------------------------------------------------------------------------------------


def test_store_is_idempotent_and_leaves_no_temporary_files(tmp_path: Path, repo: Path) -> None:
    src = tmp_path / "data" / "f.bin"
    want = make_file(src, 3 * MIB + 17)
    first = store_path(repo, src)
    obj = lfs.object_path(repo, want)
    before = obj.stat()

    fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.lseek(fd, 5, os.SEEK_SET)
        again = lfs.store(repo, fd, 3 * MIB + 17)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 5, "store reads by position; the file offset is left alone"
    finally:
        os.close(fd)

    assert again == first == lfs.pointer(want, 3 * MIB + 17)
    after = obj.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "object was rewritten"
    assert list((repo / "lfs" / "tmp").iterdir()) == []
    assert [p.name for p in (repo / "lfs" / "objects").rglob("*") if p.is_file()] == [want]


def test_store_replaces_a_truncated_object(tmp_path: Path, repo: Path) -> None:
    src = tmp_path / "data" / "f.bin"
    want = make_file(src, 100_000)
    obj = lfs.object_path(repo, want)
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"partial")
    assert store_path(repo, src) == lfs.pointer(want, 100_000)
    assert file_sha(obj) == want


def test_a_failed_store_leaves_nothing_behind(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "data" / "f.bin"
    make_file(src, 200_000)

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        store_path(repo, src)
    monkeypatch.undo()
    assert list((repo / "lfs" / "tmp").iterdir()) == []
    assert not (repo / "lfs" / "objects").exists() or not any((repo / "lfs" / "objects").rglob("*"))


def test_store_of_an_empty_and_a_tiny_file(tmp_path: Path, repo: Path) -> None:
    for content in (b"", b"abc"):
        src = tmp_path / "data" / "f.bin"
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(content)
        oid = hashlib.sha256(content).hexdigest()
        assert store_path(repo, src) == lfs.pointer(oid, len(content))
        assert lfs.object_path(repo, oid).read_bytes() == content


# --- prepare --------------------------------------------------------------------------------------------


def local_config(git_dir: Path) -> str:
    return git(git_dir, "config", "--local", "--list").decode()


def test_prepare_is_idempotent_and_writes_only_inside_the_git_dir(tmp_path: Path) -> None:
    git_dir = bare(tmp_path / "knowledge.git")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "note.md").write_text("x\n")
    outside = snapshot(tmp_path, skip=git_dir)

    lfs.prepare(GitRepo(git_dir, git_dir, "main"))
    hook = git_dir / "hooks" / "pre-push"
    assert hook.read_text() == lfs.HOOK
    assert os.access(hook, os.X_OK)
    config = local_config(git_dir)
    for key, value in lfs.CONFIG.items():
        assert f"{key}={value}\n" in config
    inside = snapshot(git_dir, skip=git_dir / "nothing")

    lfs.prepare(GitRepo(git_dir, git_dir, "main"))
    assert snapshot(git_dir, skip=git_dir / "nothing") == inside, "a second prepare changed something"
    assert snapshot(tmp_path, skip=git_dir) == outside, "prepare wrote outside the git dir"


def test_prepare_removes_stale_temporary_copies_only(tmp_path: Path, repo: Path) -> None:
    tmp = repo / "lfs" / "tmp"
    tmp.mkdir(parents=True)
    for name in ("committer-1-old", "committer-2-new", "git-lfs-old"):
        (tmp / name).write_bytes(b"x")
    for name in ("committer-1-old", "git-lfs-old"):
        os.utime(tmp / name, (1, 1))
    lfs.prepare(GitRepo(repo, repo, "main"))
    assert sorted(p.name for p in tmp.iterdir()) == ["committer-2-new", "git-lfs-old"]


def test_prepare_keeps_someone_elses_hook(tmp_path: Path) -> None:
    git_dir = bare(tmp_path / "knowledge.git")
    theirs = git_dir / "hooks" / "pre-push"
    theirs.write_text("#!/bin/sh\necho mine\n")
    lfs.prepare(GitRepo(git_dir, git_dir, "main"))
    assert theirs.read_text() == lfs.HOOK
    assert (git_dir / "hooks" / "pre-push.before-committer").read_text() == "#!/bin/sh\necho mine\n"


def test_the_hook_leaves_git_lfs_out_until_the_repository_holds_an_object(tmp_path: Path) -> None:
    """Without an LFS object there is nothing to upload: the hook does not start git-lfs (which would read
    every pushed object), so even a machine without git-lfs pushes; with one, git-lfs is needed."""
    import shutil

    git_dir = bare(tmp_path / "knowledge.git")
    lfs.prepare(GitRepo(git_dir, git_dir, "main"))
    remote = bare(tmp_path / "remote.git")
    (tmp_path / "note.md").write_text("note\n")
    blob = git(git_dir, "hash-object", "-w", str(tmp_path / "note.md")).decode().strip()
    tree = subprocess.run(["git", f"--git-dir={git_dir}", "mktree"], input=f"100644 blob {blob}\tnote.md\n".encode(),
                          env=git_env(), capture_output=True, check=True).stdout.decode()
    who = ("-c", "user.name=t", "-c", "user.email=t@localhost")
    sha = git(git_dir, *who, "commit-tree", tree.strip(), "-m", "one").decode().strip()
    git(git_dir, "update-ref", "refs/heads/main", sha)
    tools = tmp_path / "bin"  # what the hook and git need, and no git-lfs
    tools.mkdir()
    for name in ("git", "sh", "find", "cat", "sed"):
        found = shutil.which(name)
        assert found is not None
        (tools / name).symlink_to(found)
    env = {**git_env(), "PATH": str(tools)}
    push = ["git", f"--git-dir={git_dir}", "push", "--quiet", f"file://{remote}", "main"]
    assert subprocess.run(push, env=env, capture_output=True).returncode == 0
    assert git(remote, "rev-parse", "main").decode().strip() == sha
    make_file(lfs.object_path(git_dir, "a" * 64), 10)
    git(git_dir, "update-ref", "refs/heads/main",
        git(git_dir, *who, "commit-tree", tree.strip(), "-p", sha, "-m", "two").decode().strip())
    refused = subprocess.run(push, env=env, capture_output=True)
    assert refused.returncode != 0 and b"git-lfs is not installed" in refused.stderr


def test_prepare_refuses_a_hooks_path(tmp_path: Path) -> None:
    git_dir = bare(tmp_path / "knowledge.git")
    git(git_dir, "config", "core.hooksPath", str(tmp_path / "hooks"))
    with pytest.raises(CommitterError, match="hooksPath"):
        lfs.prepare(GitRepo(git_dir, git_dir, "main"))


# --- attributes: the stat cache of git status against the data directory ---------------------------------


def test_attributes_keep_a_stored_file_unchanged_for_git_status(tmp_path: Path, repo: Path) -> None:
    data = tmp_path / "data"
    make_file(data / "big.bin", 300_000)
    (data / "note.md").write_text("n\n")
    fast_import(repo, {"big.bin": store_path(repo, data / "big.bin"), "note.md": b"n\n"})
    work = GitRepo(repo, data, "main")

    work.sync_index()
    assert work.changed_paths() == {"big.bin"}, "without attributes git compares raw bytes with the pointer"

    assert lfs.write_attributes(repo, ["big.bin"]) is True
    assert lfs.write_attributes(repo, ["big.bin"]) is False
    work.sync_index()
    assert work.changed_paths() == set()
    assert sorted(p.name for p in data.iterdir()) == ["big.bin", "note.md"]


TRICKY = ["a b.bin", "x*y?.bin", "[z].bin", 'q"uote.bin', "tab\there.bin", "#hash.bin", "!bang.bin",
          "back\\slash.bin", "dir/ünï code.bin", "trailing .bin "]
DECOYS = ["xzyq.bin", "z.bin", "sub/a b.bin", "a b.bin2", "dir", "trailing .bin"]


def test_attribute_lines_match_exactly_their_paths(tmp_path: Path, repo: Path) -> None:
    lfs.write_attributes(repo, TRICKY)
    work = tmp_path / "data"
    work.mkdir()
    out = run("git", "-c", "safe.directory=*", f"--git-dir={repo}", f"--work-tree={work}",
              "check-attr", "-z", "filter", "--", *TRICKY, *DECOYS).split(b"\0")
    found = {os.fsdecode(out[i]): out[i + 2].decode() for i in range(0, len(out) - 2, 3)}
    assert found == {**dict.fromkeys(TRICKY, "lfs"), **dict.fromkeys(DECOYS, "unspecified")}


# --- pointers -------------------------------------------------------------------------------------------


def test_pointer_format_and_recognition() -> None:
    oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
    blob = lfs.pointer(oid, 12345)
    assert blob == (
        b"version https://git-lfs.github.com/spec/v1\n"
        b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        b"size 12345\n"
    )
    assert lfs.is_pointer(blob)
    assert lfs.parse(blob) == (oid, 12345)
    assert not lfs.is_pointer(blob + b"more\n")
    assert not lfs.is_pointer(blob.replace(b"4d7a", b"4D7A"))
    assert not lfs.is_pointer(blob.rstrip(b"\n"))
    assert not lfs.is_pointer(blob + b" " * 1024)
    assert not lfs.is_pointer(b"version https://git-lfs.github.com/spec/v1\n")
    assert not lfs.is_pointer(b"")
    with pytest.raises(ValueError):
        lfs.pointer("xyz", 1)


def test_the_pointer_is_what_git_lfs_itself_writes(tmp_path: Path, repo: Path) -> None:
    src = tmp_path / "data" / "f.bin"
    make_file(src, 50_000)
    with src.open("rb") as stdin:
        theirs = subprocess.run(["git", "lfs", "clean"], stdin=stdin, capture_output=True, check=True,
                                env=git_env(), cwd=repo).stdout
    assert store_path(repo, src) == theirs

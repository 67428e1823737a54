"""A repository joining a remote that already has history: take it (`init --from-remote`), adopt it
(`--adopt`), or heal missing objects from it."""

from __future__ import annotations

from collections.abc import Callable

from committer.core import logs, progress
from committer.core.errors import CommitterError, redact
from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.sync.refs import FETCHED_PREFIX, local_tags, record_pushed
from committer.sync.transport import Remote, raise_for

log = logs.get("committer.sync.bootstrap")


def remote_has_history(settings: Settings, repo: GitRepo) -> bool:
    """Whether the remote already has our branch (an empty remote simply receives the first push)."""
    remote = Remote(settings)
    result = remote.run(repo, ["ls-remote", "--heads", "--end-of-options", remote.url, repo.ref])
    raise_for(result, "remote check")
    return bool(result.stdout.strip())


def fetch_remote_head(
    settings: Settings, repo: GitRepo, *, tags: bool = False,
    cancelled: Callable[[], bool] | None = None,
) -> str | None:
    """Fetch the remote's branch into refs/committer/remote/<branch>; its commit id, or None if absent."""
    remote = Remote(settings)
    target = f"{FETCHED_PREFIX}{repo.branch}"
    refspecs = [f"+{repo.ref}:{target}"] + (["refs/tags/*:refs/tags/*"] if tags else [])
    shown = "--progress" if progress.display() else "--quiet"  # a command's bar on a terminal shows git's
    args = ["fetch", shown, "--no-tags", "--no-write-fetch-head", "--end-of-options", remote.url, *refspecs]
    result = remote.run(repo, args, cancelled=cancelled)
    if result.returncode != 0 and "couldn't find remote ref" in result.stderr:
        return None
    raise_for(result, "fetch")
    sha = repo.git("rev-parse", "-q", "--verify", f"{target}^{{commit}}").stdout.decode().strip()
    return sha or None


def fetch_lfs_objects(settings: Settings, repo: GitRepo, rev: str) -> None:
    """Download the LFS objects of `rev`'s tree from the remote into the repository's LFS store."""
    remote = Remote(settings)
    raise_for(remote.run(repo, ["lfs", "fetch", "--", remote.url, rev]), "LFS fetch")


def refetch_remote_head(settings: Settings, repo: GitRepo) -> str | None:
    """Fetch the remote branch with every object, as a fresh clone would (to heal missing objects)."""
    remote = Remote(settings)
    target = f"{FETCHED_PREFIX}{repo.branch}"
    args = ["fetch", "--refetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--end-of-options", remote.url,
            f"+{repo.ref}:{target}"]
    raise_for(remote.run(repo, args), "fetch")
    return target


def init_from_remote(settings: Settings, repo: GitRepo) -> str:
    """Take the remote's history and check its files out into the empty data directory."""
    data = repo.data_dir
    if data.exists() and any(data.iterdir()):
        raise CommitterError(
            f"{data} is not empty: --from-remote only checks files out into an empty directory; "
            "move its content away first, or use --adopt to commit it on top of the remote history"
        )
    if not repo.exists():
        repo.init()
    sha = fetch_remote_head(settings, repo, tags=True)
    if sha is None:
        raise CommitterError(f"the remote {redact(settings.remote)} has no branch {repo.branch!r} to take")
    local = repo.head()
    if local not in (None, sha):
        raise CommitterError(
            f"{repo.git_dir} already has its own history on {repo.branch!r}; start from an empty git dir"
        )
    data.mkdir(parents=True, exist_ok=True)
    repo.git("update-ref", "-m", "committer: init from remote", repo.ref, sha)
    record_pushed(repo, settings.remote, sha, local_tags(repo), "committer: init from remote")
    repo.git("read-tree", "--reset", "-u", sha, work_tree=True)
    log.info("init_from_remote", remote=redact(settings.remote), head=sha)
    return sha


def adopt_remote(settings: Settings, repo: GitRepo) -> str | None:
    """Put our branch on the remote's history, data directory untouched; None when the remote is empty."""
    if not repo.exists():
        repo.init()
    sha = fetch_remote_head(settings, repo, tags=True)
    if sha is None:
        return None
    old = repo.head()
    repo.git("update-ref", "-m", "committer: adopt remote history", repo.ref, sha)
    record_pushed(repo, settings.remote, sha, local_tags(repo), "committer: adopt remote history")
    # The index now describes the remote's tree, so the next reconcile commits the local content on top.
    repo.sync_index()
    log.info("adopt_remote", remote=redact(settings.remote), head=sha, replaced=old)
    return sha

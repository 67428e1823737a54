"""What the remote has, remembered per remote in private refs: pending commits are counted against them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from committer.git.repo import GitRepo
from committer.sync.credentials import split_credentials

PUSHED_PREFIX = "refs/committer/pushed/"


PUSHED_TAGS_PREFIX = "refs/committer/pushed-tags/"


FETCHED_PREFIX = "refs/committer/remote/"


DIVERGED_PREFIX = "refs/committer/diverged/"


def remote_key(url: str) -> str:
    """A short name for one remote (its URL without credentials): what was pushed is kept per remote."""
    return hashlib.sha1(split_credentials(url)[0].encode(), usedforsecurity=False).hexdigest()[:12]


def pushed_ref(url: str, branch: str) -> str:
    """The private ref that holds what `url` has of `branch`."""
    return f"{PUSHED_PREFIX}{remote_key(url)}/{branch}"


def diverged_ref(url: str, branch: str) -> str:
    """The private ref that holds the remote head `url`'s `branch` diverged at, while pull_policy = ff-only
    leaves the divergence to a person: pushes wait while it is there."""
    return f"{DIVERGED_PREFIX}{remote_key(url)}/{branch}"


def pushed_tags_prefix(url: str) -> str:
    """Where the tags `url` has are remembered."""
    return f"{PUSHED_TAGS_PREFIX}{remote_key(url)}/"


def record_pushed(
    repo: GitRepo, url: str, branch_sha: str | None, tags: Mapping[str, str], note: str
) -> None:
    """Remember what the remote has: the private refs pending commits are counted against."""
    lines = [f"update {pushed_ref(url, repo.branch)} {branch_sha}\n"] if branch_sha else []
    lines += [f"update {pushed_tags_prefix(url)}{name} {sha}\n" for name, sha in tags.items()]
    if lines:
        repo.git("update-ref", "--create-reflog", "-m", note, "--stdin",
                 input="".join(lines).encode("utf-8", "surrogateescape"))


def local_tags(repo: GitRepo) -> dict[str, str]:
    """Tag name -> object id of every tag in the repository."""
    out = repo.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/tags/").stdout.decode(
        "utf-8", "surrogateescape")
    pairs = (line.split(" ", 1) for line in out.split("\n") if " " in line)  # not splitlines: a name may hold U+2028
    return {ref[len("refs/tags/") :]: sha for sha, ref in pairs}

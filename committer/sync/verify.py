"""What the remote holds: a push confirmed from its own porcelain line, and the remote branch compared with
what was last pushed there (ahead is someone's new commits; behind or rewritten is a divergence)."""

from __future__ import annotations

import re
from collections.abc import Callable

from committer.git.repo import GitRepo
from committer.sync.transport import Remote, raise_for

SAME, AHEAD, DIVERGED = "same", "ahead", "diverged"
CHECK_PREFIX = "refs/committer/check/"
_RANGE = re.compile(r"^([0-9a-f]{4,64})\.\.\.?([0-9a-f]{4,64})\b")


def confirm(lines: dict[str, tuple[str, str]], ref: str, sha: str) -> str | None:
    """None when the porcelain line for `ref` says the remote now holds `sha`; else what it said instead."""
    flag, summary = lines.get(ref, ("", ""))
    if flag == "=" or (flag == "*" and summary.startswith("[new ")):
        return None  # already there, or created from exactly what was sent
    match = _RANGE.match(summary)
    if flag in (" ", "+") and match and sha.startswith(match.group(2)):
        return None
    said = f"{flag} {summary}".strip() or "nothing"
    return f"the remote's answer for {ref} ({said}) does not confirm {sha[:12]}"


def remote_branch(remote: Remote, repo: GitRepo, cancelled: Callable[[], bool] | None = None) -> str | None:
    """The commit the remote's branch is at now (one ls-remote), or None when it has no such branch."""
    timeout = min(30.0, remote.settings.push_timeout)
    args = ["ls-remote", "--heads", "--end-of-options", remote.url, repo.ref]
    result = remote.run(repo, args, timeout=timeout, cancelled=cancelled)
    raise_for(result, "remote check")
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.strip() == repo.ref:
            return sha.strip()
    return None


def _known(repo: GitRepo, sha: str) -> bool:
    return repo.git("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0


def compare(
    remote: Remote, repo: GitRepo, remote_sha: str | None, pushed: str | None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[str, str | None]:
    """(SAME, AHEAD or DIVERGED, the remote's commit) for a remote branch against what was pushed there.

    A commit of the remote unknown here is fetched into a private ref first, to see whether it descends
    from what was pushed (someone added commits) or not (history rewritten).
    """
    if remote_sha == pushed:
        return SAME, remote_sha
    if pushed is None:
        return AHEAD, remote_sha
    if remote_sha is None:
        return DIVERGED, None  # the branch was deleted on the remote
    if not _known(repo, remote_sha):
        target = f"{CHECK_PREFIX}{repo.branch}"
        args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--end-of-options", remote.url,
                f"+{repo.ref}:{target}"]
        raise_for(remote.run(repo, args, cancelled=cancelled), "remote check")
        remote_sha = repo.git("rev-parse", "-q", "--verify", f"{target}^{{commit}}").stdout.decode().strip()
        if remote_sha == pushed:
            return SAME, remote_sha
    descends = repo.git("merge-base", "--is-ancestor", pushed, remote_sha, check=False).returncode == 0
    return (AHEAD if descends else DIVERGED), remote_sha


def describe(repo: GitRepo, remote_sha: str | None, pushed: str) -> str:
    """One sentence for status and logs: how the remote's branch differs from what was pushed."""
    if remote_sha is None:
        return f"the remote's {repo.branch} was deleted; it held {pushed[:12]}, pushed from here"
    behind = repo.git("merge-base", "--is-ancestor", remote_sha, pushed, check=False).returncode == 0
    how = "moved back to" if behind else "rewritten to"
    return (f"the remote's {repo.branch} was {how} {remote_sha[:12]}; it held {pushed[:12]}, pushed from here, "
            "which is not overwritten")

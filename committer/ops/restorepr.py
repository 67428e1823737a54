"""`restore --as-pr`: a restore proposed instead of applied. The path is put back as it was at a revision in a
commit of its own on a branch `committer/restore/<UTC time>` made from the current head, pushed, and proposed
as a pull request into the followed branch; the data directory and the branch are not changed. The commit
carries the same BM-Meta trailer ("op":"restore", its source and revision) as a restore applied here, and
the same rules choose what it writes: a path the ignore rules keep out here is not written.
"""

from __future__ import annotations

import time
from typing import Any

from committer.commit import message
from committer.commit.committer import Committer
from committer.core import logs
from committer.core.errors import CommitterError, ConfigError, redact
from committer.git import revs, trees
from committer.git.objects import TreeEntry
from committer.ops.restore import normalize
from committer.sync import pullrequest
from committer.sync.merge import commit_tree

log = logs.get("committer.restore")


def restore_as_pr(committer: Committer, path: str, rev: str, dry_run: bool = False) -> dict[str, Any]:
    """Plan, and unless dry_run, commit on a new branch from HEAD, push it and open a pull request."""
    settings, repo = committer.settings, committer.repo
    if not settings.remote:
        raise ConfigError("remote", "restore --as-pr pushes a branch and opens a pull request: set remote")
    rel = normalize(path)
    committer.refresh_head()
    head = committer.head
    if head is None:
        raise CommitterError("restore --as-pr: the branch has no commits yet")
    source = revs.resolve(repo, rev, path=rel)
    if source is None:
        raise ConfigError("--to", f"unknown revision {rev!r}: give {revs.FORMS}")
    wanted = {p: e for p, e in repo.ls_tree(source, [rel] if rel else None).items()
              if not committer.pfilter.ignored(p)}
    now = repo.ls_tree(head, [rel] if rel else None)
    if not wanted and not now:
        raise ConfigError("path", f"{rel or '.'} is neither in {rev} nor in {repo.branch}")
    overrides: dict[str, TreeEntry | None] = {p: None for p in now if p not in wanted}
    overrides.update({p: e for p, e in wanted.items() if now.get(p) != e})
    answer: dict[str, Any] = {
        "path": rel or ".", "rev": rev, "source": source, "dry_run": dry_run, "as_pr": True, "kept": [],
        "actions": [{"action": "delete" if e is None else "write", "path": p} for p, e in sorted(overrides.items())],
        "sha": None, "branch": None, "pull_request": None,
    }
    if dry_run or not overrides:
        return answer
    when = time.time()
    tree = trees.write_tree(repo, f"{head}^{{tree}}", overrides)
    changes = {p: (now.get(p), e) for p, e in overrides.items()}
    extra = {"op": "restore", "source": source, "rev": rev, "path": rel or ".", "as_pr": True}
    stamp = repo.git("show", "-s", "--format=%ct", source, check=False).stdout.decode().strip()
    to = time.strftime("%Y-%m-%d %H:%M", time.localtime(int(stamp))) if stamp.isdigit() else None
    subject = message.subject(message.About(op="restore", path=rel or ".", to=to))
    sha = commit_tree(committer, tree, [head], subject, extra, changes, when)
    branch = pullrequest.branch_name("restore", when)
    answer.update(sha=sha, branch=branch)
    pullrequest.push_branch(settings, repo, sha, branch)
    title = f"committer: {subject.split(': ', 1)[-1]}"
    body = (f"A restore of `{rel or '.'}` to {rev} ({source[:12]}), proposed instead of applied: the data "
            f"directory still holds `{repo.branch}` as it was. Merge this pull request to apply it.")
    try:
        found = pullrequest.open_request(settings, branch, repo.branch, title, body)
    except CommitterError as exc:  # the branch is on the remote: the pull request can be opened by hand
        answer["pull_request_error"] = redact(exc.message)
        log.warning("restore_pr_failed", branch=branch, error=redact(exc.message))
    else:
        answer["pull_request"] = None if found is None else {"number": found.number, "url": found.url}
    log.info("restored_as_pr", path=rel or ".", rev=rev, source=source, files=len(overrides), sha=sha, branch=branch,
             pull_request=(answer["pull_request"] or {}).get("url"))
    return answer


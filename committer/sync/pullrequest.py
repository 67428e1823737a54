"""Local commits proposed to the remote instead of merged: a branch pushed to the remote, and a pull request
of it into the branch committer follows (`pull_policy = pull-request`, `restore --as-pr`).

The branch is `committer/<host>/<UTC time>` (a restore's `committer/restore/<UTC time>`): pushed with the
remote's own credentials (never in a URL), kept here as a local branch too, and named in the pull record with
its pull request. A host without pull requests gets the branch and one line saying so. A branch pushed whose
pull request could not be opened yet (the API down) is reused, not pushed again under a new name, until its
pull request is open.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import asdict
from typing import Any

from committer.core import clock, logs
from committer.core.errors import CommitterError, redact
from committer.core.settings import Settings
from committer.git import trees
from committer.git.repo import GitRepo
from committer.sync.errors import PushError, porcelain
from committer.sync.forge import PullRequest
from committer.sync.pullstate import PullRecord
from committer.sync.transport import Remote, stopped_error

log = logs.get("committer.pullrequest")

OPEN, MERGED, CLOSED, NONE = "open", "merged", "closed", "no_pull_requests"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def branch_name(kind: str | None = None, when: float | None = None) -> str:
    """`committer/<host>/<UTC time>`, or `committer/<kind>/<UTC time>`: a name git and every host accept."""
    label = kind or _UNSAFE.sub("-", socket.gethostname()).strip(".-")[:40].rstrip(".") or "host"
    if label.endswith(".lock"):
        label = label[:-5] or "host"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if when is None else when))
    return f"committer/{label}/{stamp}"


def push_branch(settings: Settings, repo: GitRepo, sha: str, branch: str) -> None:
    """Push `sha` as the remote's branch `branch` (created, or moved forward) and keep it as a local branch."""
    ref = f"refs/heads/{branch}"
    repo.git("update-ref", "-m", "committer: proposed", ref, sha)
    remote = Remote(settings)
    run = remote.run(repo, ["push", "--porcelain", "--end-of-options", remote.url, f"{sha}:{ref}"])
    if run.timed_out:
        raise stopped_error(run)
    error = remote.forge.classify(run.returncode, run.stderr, run.stdout, ref=ref, secrets=run.secrets)
    lines = porcelain(run.stdout)
    if error is None and (ref not in lines or lines[ref][0] == "!"):
        error = PushError("unknown", f"the remote did not confirm the branch {branch}")
    if error is not None:
        log.warning("proposal_push_failed", branch=branch, kind=error.kind, message=error.detail)
        raise error
    log.info("proposal_pushed", branch=branch, head=sha, remote=remote.shown)


def open_request(settings: Settings, branch: str, base: str, title: str, body: str) -> PullRequest | None:
    """The forge's pull request of `branch` into `base`; None (and one line) on a host without them."""
    forge = Remote(settings).forge
    found = forge.open_pull_request(branch, base, title, body)
    if found is None:
        log.warning("pull_request_unavailable", branch=branch, host=forge.title,
                    why=f"{forge.title} has no pull requests: the commits are on the branch {branch}; merge it there "
                        "by hand")
    else:
        log.info("pull_request_opened", branch=branch, number=found.number, url=found.url)
    return found


def propose(
    settings: Settings, repo: GitRepo, record: PullRecord, local: str, base: str, remote: str
) -> dict[str, Any]:
    """The local commits since `base` on a branch of the remote with a pull request into the followed branch;
    the record's entry for it. Asked again for the same local head (a pull that failed after the push, a held
    pull confirmed), the same branch is used, and its pull request opened when it is not yet."""
    entries = record.pull_requests()
    entry = next((e for e in entries if e.get("head") == local), None)
    if entry is None:  # a branch not proposed yet (the API was down) takes the commits made since
        entry = next((e for e in entries if e.get("state") in ("pushing", "pushed")
                      and trees.is_ancestor(repo, str(e.get("head")), local)), None)
        if entry is not None:
            entry.update(head=local, base=base, remote_head=remote, state="pushing")
    if entry is None:
        name, taken = branch_name(), {str(e.get("branch")) for e in entries}
        unique, number = name, 1
        while unique in taken or repo.resolve(f"refs/heads/{unique}") is not None:  # two in one second
            number += 1
            unique = f"{name}-{number}"
        entry = {"branch": unique, "head": local, "base": base, "remote_head": remote,
                 "at": clock.iso(clock.now()), "state": "pushing", "number": None, "url": None}
        entries.append(entry)
        record.set_pull_requests(entries)  # remembered before the push: a retry reuses the name
    branch = str(entry["branch"])
    if entry["state"] == "pushing":
        push_branch(settings, repo, local, branch)
        entry["state"] = "pushed"
        record.set_pull_requests(entries)
    if entry["state"] == "pushed":
        count = repo.git("rev-list", "--count", f"{base}..{local}").stdout.decode().strip()
        title = f"committer: {count} commit(s) from {socket.gethostname()} that {repo.branch} moved past"
        body = (f"The remote's `{repo.branch}` and this machine's both had new commits, and `pull_policy` is "
                f"`pull-request`: these are this machine's commits since {base[:12]}. Its data directory now "
                f"follows `{repo.branch}`; merge this pull request to bring them back.")
        found = open_request(settings, branch, repo.branch, title, body)
        entry.update(state=NONE if found is None else OPEN, **_shown(found))
        record.set_pull_requests(entries)
    return entry


def refresh(settings: Settings, record: PullRecord) -> list[dict[str, Any]]:
    """Ask the forge about every open pull request; those that were merged or closed since (for the log)."""
    entries = record.pull_requests()
    waiting = [e for e in entries if e.get("state") == OPEN and isinstance(e.get("number"), int)]
    if not waiting:
        return []
    forge = Remote(settings).forge
    done = []
    for entry in waiting:
        try:
            found = forge.pull_request(int(entry["number"]))
        except CommitterError as exc:  # asked again at the next pull
            log.info("pull_request_unknown", number=entry["number"], error=redact(exc.message))
            continue
        if found is None or (found.state == OPEN and not found.merged):
            continue
        entry.update(_shown(found), state=MERGED if found.merged else CLOSED)
        log.info("pull_request_settled", number=found.number, url=found.url, state=entry["state"])
        done.append(entry)
    if done:
        record.set_pull_requests(entries)
    return done


def _shown(found: PullRequest | None) -> dict[str, Any]:
    if found is None:
        return {}
    return {k: v for k, v in asdict(found).items() if k in ("number", "url")}

"""Snapshots: annotated tags at HEAD, with a BM-Meta trailer, pushed with the next push."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from committer.commit import message
from committer.commit.committer import Committer
from committer.core import logs
from committer.core.errors import CommitterError, ConfigError
from committer.core.paths import display_path
from committer.git.repo import GitRepo

log = logs.get("committer.snapshot")
NONE_YET = "no snapshots yet; `committer snapshot -m 'what this is'` makes one"
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # os.fsdecode's form of a byte that is not UTF-8


def _exists(repo: GitRepo, name: str) -> bool:
    return repo.git("rev-parse", "-q", "--verify", f"refs/tags/{name}", check=False).returncode == 0


def create(committer: Committer, text: str, name: str | None = None) -> dict[str, Any]:
    """Tag HEAD as it is now (after whatever was pending was committed)."""
    repo = committer.repo
    committer.refresh_head()
    head = committer.head
    if head is None:
        raise CommitterError("nothing to snapshot yet: the repository has no commit")
    if name is None:
        base = time.strftime("snapshot-%Y%m%d-%H%M%S", time.gmtime())
        name, n = base, 1
        while _exists(repo, name):
            n += 1
            name = f"{base}-{n}"
    elif (name.startswith("-") or _NOT_UTF8.search(name)
          or repo.git("check-ref-format", f"refs/tags/{name}", check=False).returncode != 0):
        raise ConfigError("--tag", f"{display_path(name)!r} is not a valid tag name")
    elif _exists(repo, name):
        raise ConfigError("--tag", f"a snapshot named {name!r} already exists")
    meta = json.dumps({"v": 1, "op": "snapshot", "host": committer.step.host, "head": head}, separators=(",", ":"))
    # bytes of the message that are not UTF-8 (from a shell's argv) are kept readable as \\xNN
    text = _NOT_UTF8.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)
    body = message.build(text.strip() or "snapshot", meta)
    repo.git("tag", "-a", "-F", "-", name, head, input=body.encode("utf-8"))
    log.info("snapshot", tag=name, head=head)
    return {"tag": name, "head": head}


def listing(repo: GitRepo) -> list[dict[str, Any]]:
    """Every snapshot tag, newest first."""
    fmt = "%(refname:strip=2)%1f%(*objectname)%(objectname)%1f%(taggerdate:iso-strict)%1f%(contents:subject)"
    out = repo.git("for-each-ref", "--sort=-taggerdate", f"--format={fmt}", "refs/tags/").stdout.decode(
        "utf-8", "replace")  # tags pulled from elsewhere: any bytes
    found = []
    for line in out.split("\n"):
        if line.count("\x1f") < 3:
            continue
        name, target, date, subject = line.split("\x1f", 3)
        found.append({"tag": name, "commit": target[:40], "date": date, "message": subject})
    return found

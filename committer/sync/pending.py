"""What the remote lacks: the branch's commits past what was last pushed, and tags it has not got."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from committer.commit import message
from committer.git.repo import GitRepo

_REFLOG = re.compile(r"@\{(\d+)\}\x1fpush (\d+(?:\.\d+)?)s")


@dataclass
class Pending:
    """The branch and what was pushed of it, the commit times and batch ids the remote lacks, its tags."""

    branch: str | None = None
    pushed: str | None = None
    times: list[int] = field(default_factory=list)
    undated: int = 0  # commits whose committer date git cannot read (another writer's): counted, not timed
    batches: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def needed(self) -> bool:
        return bool(self.count or self.tags or (self.branch and self.branch != self.pushed))

    @property
    def count(self) -> int:
        """Commits the remote lacks."""
        return len(self.times) + self.undated


def read_pending(repo: GitRepo, pushed_ref: str, pushed_tags: str) -> Pending:
    """One `for-each-ref`, and one `log` when the branch moved since the last push."""
    pending = Pending()
    refs = (repo.ref, pushed_ref, "refs/tags/", pushed_tags)
    # a tag name is any bytes a remote sent: kept as the filesystem form, so it goes back out unchanged
    out = repo.git("for-each-ref", "--format=%(objectname) %(refname)", *refs).stdout.decode("utf-8", "surrogateescape")
    tags: dict[str, str] = {}
    pushed: dict[str, str] = {}
    for sha, ref in (line.split(" ", 1) for line in out.split("\n") if " " in line):  # not splitlines: U+2028
        if ref == repo.ref:
            pending.branch = sha
        elif ref == pushed_ref:
            pending.pushed = sha
        elif ref.startswith("refs/tags/"):
            tags[ref[len("refs/tags/") :]] = sha
        elif ref.startswith(pushed_tags):
            pushed[ref[len(pushed_tags) :]] = sha
    pending.tags = {name: sha for name, sha in tags.items() if pushed.get(name) != sha}
    if pending.branch and pending.branch != pending.pushed:
        exclude = [f"^{pending.pushed}"] if pending.pushed else []
        # messages of other writers are data: any encoding, any date (one that git cannot read is left out)
        out = repo.git("log", "--format=%ct%x1f%B%x1e", pending.branch, *exclude).stdout.decode("utf-8", "replace")
        seen: set[str] = set()
        for record in out.split("\x1e"):
            stamp, sep, body = record.lstrip("\n").partition("\x1f")  # not strip(): \x1f is white space to it
            if not sep:
                continue
            if stamp.isdigit():
                pending.times.append(int(stamp))
            else:
                pending.undated += 1
            meta = message.parse_trailer(body)
            if meta and isinstance(meta.get("batch"), str) and meta["batch"] not in seen:
                seen.add(meta["batch"])  # a huge change is many commits of one batch: named once
                pending.batches.append(meta["batch"])
    return pending


def last_push(repo: GitRepo, pushed_ref: str) -> tuple[int, float] | None:
    """(unix time, seconds) of the last recorded push, from the reflog of the pushed ref."""
    proc = repo.git("reflog", "show", "--date=unix", "--format=%gd%x1f%gs", "-50", pushed_ref, "--", check=False)
    match = _REFLOG.search(proc.stdout.decode("utf-8", "replace")) if proc.returncode == 0 else None
    return (int(match.group(1)), float(match.group(2))) if match else None

"""What fleet tasks know of a repository and its source before git runs: where it lies (`Layout`), where it
comes from and how git reaches it (`Source`, `Access`), what a failed task says (`TaskFailed`, and `reason`: what a
failed network git call means, in one line an operator can act on, credentials removed)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from committer.core.errors import redact
from committer.fleet.store import BranchState


class TaskFailed(Exception):
    """A task that did not do its work: one redacted line, and whether a later attempt may succeed."""

    def __init__(self, message: str, *, retry: bool) -> None:
        message = " ".join(message.split())
        super().__init__(message)
        self.message = message
        self.retry = retry


@dataclass(frozen=True)
class Access:
    """What git gets to reach a source: its environment entries (a scoped credential helper and the credential
    it answers with, or an SSH command) and the secrets to remove from whatever it prints."""

    name: str = ""  # the credential's name, '' for none
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    url: str
    access: Access
    mode: str  # mirror, bare or regular


@dataclass(frozen=True)
class Layout:
    """A repository on disk: `path` is GIT_REPOS_DIR/{slug}/{name}; a regular one keeps its git dir in .git."""

    path: Path
    bare: bool

    @property
    def git_dir(self) -> Path:
        return self.path if self.bare else self.path / ".git"

    @property
    def work_tree(self) -> Path | None:
        return None if self.bare else self.path


@dataclass(frozen=True)
class Snapshot:
    branches: tuple[BranchState, ...]
    total_commits: int
    last_commit_hash: str
    default_branch: str


def config_env(config: Mapping[str, str]) -> dict[str, str]:
    """Git config given through the environment (never the repository's config file), after the runner's own."""
    env = {"GIT_CONFIG_COUNT": str(len(config) + 1), "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}
    for index, (key, value) in enumerate(config.items(), start=1):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def duration(seconds: float) -> str:
    """30m, 1h, 1m30s, 45s: a time limit as a person writes it."""
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


def shown(source: Source) -> str:
    """The source's URL for a message: an ssh user (git@) is no secret, a user in an http URL may be."""
    url = source.url
    for secret in source.access.secrets:
        url = url.replace(secret, "***")
    return redact(url) if url.lower().startswith(("http://", "https://")) else url


def reason(stderr: str, source: Source, action: str) -> TaskFailed:
    """What a failed network git call means, in one line an operator can act on."""
    # git's own warnings and hints ("warning: templates not found") say nothing about the source.
    lines = [line for line in redact(stderr, source.access.secrets).splitlines()
             if line.strip() and not line.startswith(("hint:", "warning:"))]
    low = "\n".join(lines).lower()
    url, name = shown(source), source.access.name
    code = re.search(r"returned error: (\d{3})|http (\d{3})", low)
    status = next((g for g in code.groups() if g), "") if code else ""
    if re.search(r"could not resolve host|name or service not known|temporary failure in name resolution", low):
        return TaskFailed(f"cannot reach the source {url}: host not found", retry=True)
    if "connection refused" in low or "couldn't connect" in low or "failed to connect" in low:
        return TaskFailed(f"cannot reach the source {url}: connection refused", retry=True)
    if re.search(r"network is unreachable|no route to host|connection timed out|timeout was reached", low):
        return TaskFailed(f"cannot reach the source {url}: no answer", retry=True)
    if "host key verification failed" in low:
        return TaskFailed(f"the ssh host key of {url} is not known: add it to the worker's known_hosts", retry=True)
    if status in ("401", "403") or re.search(
            r"authentication failed|could not read (username|password)|terminal prompts disabled|"
            r"permission denied \(publickey", low):
        how = f"HTTP {status or '401'}" if source.url.startswith(("http://", "https://")) else "ssh"
        if name:
            return TaskFailed(f"the source refused the credential {name!r} ({how})", retry=True)
        return TaskFailed(f"the source {url} asks for a credential ({how}): give the repository one", retry=True)
    if status == "404" or re.search(r"repository not found|does not appear to be a git repository|"
                                    r"repository '[^']*' does not exist|not found", low):
        return TaskFailed(f"the source {url} does not exist (or the credential may not read it)", retry=False)
    if status:
        return TaskFailed(f"the source {url} answered HTTP {status}", retry=True)
    return TaskFailed(f"{action} {url} failed: {lines[-1] if lines else 'no message'}", retry=True)

"""The host of the remote, as one small interface: a forge (GitHub, a plain git host, later GitLab or Gitea).

Everything committer asks of the host goes through a `Forge`: credentials for the remote, whether its
repository is private, creating it and its push webhook (`connect`), checking a webhook delivery, what a
refused push or fetch means, minting tokens, and opening and reading pull requests (`pull_policy`). A host
that cannot do something says so (None, or a CommitterError naming it); no caller asks which host it is.
`committer.sync.forges` picks one per remote.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from committer.commit.trailer import text
from committer.core.settings import Settings
from committer.sync.errors import PushError

VISIBILITY_EVERY = 3600.0  # a repository seen private is asked again at most this often
DEPTH_MAX = 64  # nesting of a webhook payload's arrays and objects; push payloads nest about 5 deep
_SCP = re.compile(r"^(?:[^@/]+@)?([^:/]+):(.+)$")  # git@host:owner/repo.git

Credentials = tuple[str, str]  # (user, password) as git sends them


@dataclass(frozen=True)
class Seen:
    """A repository's visibility as its host tells it: public, private or unknown."""

    repository: str  # owner/name, as messages show it
    state: str


@dataclass(frozen=True)
class Repository:
    """A repository `connect` found or created on the host."""

    clone_url: object  # as the host answered: checked like a configured remote before it is written
    private: bool
    created: bool


@dataclass(frozen=True)
class Minted:
    """A token minted now (doctor's check of an App): who minted it, what was read, when it expires."""

    what: str
    detail: str
    expires_at: float | None


@dataclass(frozen=True)
class Refusal:
    """A webhook delivery refused before it is read: the HTTP status, the answer, and why (for the log)."""

    status: int
    error: str
    reason: str
    delivery: str = ""


@dataclass(frozen=True)
class Named:
    """What a delivery says its repository is."""

    keys: tuple[str, ...]  # host/owner/name from its URLs
    full_name: str | None  # owner/name

    @property
    def shown(self) -> str:
        """The name as logs and answers show it: one line of plain text, at most 200 characters."""
        return text(self.full_name or (self.keys[0] if self.keys else "?"), 200)

    def matches(self, remote: str) -> bool:
        """Whether it names the remote (by URL, or by owner/name at the end of the remote's path)."""
        if remote in self.keys:
            return True
        return self.full_name is not None and remote.split("/", 1)[-1] == self.full_name.lower()


@dataclass(frozen=True)
class PushEvent:
    """What a signed push delivery says happened to a branch."""

    ref: object  # as sent: compared, never trusted to be a string
    head: str | None
    forced: bool
    deleted: bool
    repository: Named | None


@dataclass(frozen=True)
class Delivery:
    """A signed webhook delivery: its id, its kind ("push", "ping" or the host's name of another event), how
    logs name it, and for a push what it says (None when the payload is not a JSON object of bounded depth)."""

    id: str
    event: str
    fields: Mapping[str, str]
    push: PushEvent | None = None


@dataclass(frozen=True)
class PullRequest:
    """A pull request as the host tells it: its number, its page, open or closed, and whether it was merged."""

    number: int
    url: str
    state: str
    merged: bool


class Forge(Protocol):
    """What committer asks of the host of its remote."""

    name: str  # lower case, in check names: "github"
    title: str  # in messages: "GitHub"
    make_private: str  # where the host's pages make a repository private
    delivery_headers: tuple[str, ...]  # a webhook delivery without these is refused before its body is read

    def credentials(self, url: str) -> Credentials | None:
        """(user, password) for `url`'s host, read or minted now; None when there is no token."""
        ...

    def renew_credentials(self) -> bool:
        """The host refused the credentials: drop them; True when new ones make one more try worth it."""
        ...

    def repository(self) -> tuple[str, str] | None:
        """(owner, name) of the remote on this host; None when the host has no such names for it."""
        ...

    def visibility(self, credentials: Callable[[], Credentials | None]) -> Seen | None:
        """Whether the remote's repository is public or private; None when the host cannot tell."""
        ...

    def create_repository(self, owner: str, name: str) -> Repository:
        """The repository, created private when missing; a CommitterError when the host cannot create one."""
        ...

    def register_webhook(self, owner: str, name: str, url: str, secret: str | None,
                         new_secret: Callable[[], str]) -> str:
        """The push webhook to `url` signed with `secret` (`new_secret()` when None): created, updated or
        unchanged; a CommitterError when the host has no webhooks to register."""
        ...

    def verify_delivery(self, headers: Mapping[str, str], body: bytes, secret: str | None) -> Delivery | Refusal:
        """A webhook delivery checked against the shared secret: what it says, or why it is refused."""
        ...

    def classify(self, returncode: int, stderr: str, stdout: str, *, ref: str | None = None,
                 secrets: tuple[str, ...] = ()) -> PushError | None:
        """What a push or fetch's answer means: None for success, else the classified error."""
        ...

    def mint_token(self) -> Minted | None:
        """A fresh token, minted now (not the cached one); None when tokens are not minted for this remote."""
        ...

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequest | None:
        """A pull request of branch `head` into `base` (the one already open for `head`, when there is one); None
        when the host has no pull requests; a CommitterError when it cannot open one now."""
        ...

    def pull_request(self, number: int) -> PullRequest | None:
        """Pull request `number` as it is now; None when the host has no pull requests (or no such one)."""
        ...

    def on_token_refreshed(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call `listener(result)` after every mint (ok, refused, unreachable); returns what stops it."""
        ...


class VisibilityRule:
    """A private knowledge base never reaches a public repository: asked before pushes, at most hourly once
    the repository was seen private."""

    def __init__(self, forge: Forge, credentials: Callable[[], Credentials | None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.forge = forge
        self._credentials = credentials
        self._clock = clock
        self._private_until = 0.0

    def check(self) -> None:
        """Raise PushError(public_repository) when the host says the repository is public."""
        if self._clock() < self._private_until:
            return
        seen = self.forge.visibility(self._credentials)
        if seen is None or seen.state == "unknown":
            return
        if seen.state == "public":
            raise PushError(
                "public_repository",
                f"{seen.repository} is public on {self.forge.title}: committer does not push a private knowledge "
                "base to a public repository",
            )
        self._private_until = self._clock() + VISIBILITY_EVERY


def refused(delivery: str = "") -> Refusal:
    """The refusal of every delivery while no webhook secret is configured."""
    return Refusal(403, "webhook_secret is not configured on this daemon", "no webhook secret configured", delivery)


def repository_key(url: str) -> str:
    """A repository URL as host/owner/name, lower case, without credentials, port, `.git` or a trailing
    slash: https, ssh and scp-form URLs of one repository give the same key."""
    value = url.strip()
    scp = None if "://" in value else _SCP.match(value)
    if scp:
        host, path = scp.group(1), scp.group(2)
    else:
        parts = urlsplit(value)
        host, path = (parts.hostname or ""), parts.path
    path = path.strip("/")
    if path.lower().endswith(".git"):
        path = path[:-4]
    return f"{host}/{path.strip('/')}".lower()


def no_settings(url: str) -> Settings:
    """Settings that name only a remote: what a forge is chosen by when only a URL is known."""
    return Settings(remote=url)

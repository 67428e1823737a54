"""Any other git host (file://, self-hosted smart HTTP, ssh): git alone, with nothing to ask beyond it.

It has no visibility to check, no repositories, webhooks or pull requests to create and no tokens to mint; its
credentials are the configured token; a refused push is classified by the rules table alone. Webhook
deliveries are checked in GitHub's signed form, which Gitea and others send too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from committer.core.errors import CommitterError, redact
from committer.core.settings import Settings
from committer.sync.credentials import TOKEN_USER, read_token
from committer.sync.errors import PushError, classify
from committer.sync.forge import Credentials, Delivery, Minted, PullRequest, Refusal, Repository, Seen
from committer.sync.forges.github import HEADERS, verify_delivery


class Plain:
    """A plain git host: whatever no other forge claims."""

    name: str = "git"
    title: str = "the git host"
    make_private: str = "on the host"
    delivery_headers: tuple[str, ...] = HEADERS

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def credentials(self, url: str) -> Credentials | None:
        """The token from its sources (COMMITTER_TOKEN, token_file, the systemd credential) for HTTPS."""
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            return None
        token = read_token(self.settings)
        return (TOKEN_USER, token) if token else None

    def renew_credentials(self) -> bool:
        """A configured token is read at every call already: nothing new to get."""
        return False

    def repository(self) -> tuple[str, str] | None:
        """A plain host has no owner/name of its own."""
        return None

    def visibility(self, credentials: Callable[[], Credentials | None]) -> Seen | None:
        """A plain host cannot tell."""
        return None

    def create_repository(self, owner: str, name: str) -> Repository:
        """Not possible: git cannot create a repository on a remote host."""
        raise CommitterError(f"{self._shown()} is a plain git host: committer cannot create {owner}/{name} there; "
                             "create the repository on the host and set remote")

    def register_webhook(self, owner: str, name: str, url: str, secret: str | None,
                         new_secret: Callable[[], str]) -> str:
        """Not possible: a plain git host has no API for webhooks."""
        raise CommitterError(f"{self._shown()} is a plain git host: committer cannot register a webhook there; "
                             f"add one to {url} on the host, with the webhook secret")

    def verify_delivery(self, headers: Mapping[str, str], body: bytes, secret: str | None) -> Delivery | Refusal:
        """Deliveries signed as GitHub signs them (X-Hub-Signature-256)."""
        return verify_delivery(headers, body, secret)

    def classify(self, returncode: int, stderr: str, stdout: str, *, ref: str | None = None,
                 secrets: tuple[str, ...] = ()) -> PushError | None:
        """The rules table, as it is."""
        return classify(returncode, stderr, stdout, ref=ref, secrets=secrets)

    def mint_token(self) -> Minted | None:
        """No tokens are minted for a plain host."""
        return None

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequest | None:
        """A plain git host has no pull requests: the branch is all there is."""
        return None

    def pull_request(self, number: int) -> PullRequest | None:
        """A plain git host has no pull requests."""
        return None

    def on_token_refreshed(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Nothing is ever minted, so nothing is ever told."""
        return lambda: None

    def _shown(self) -> str:
        return redact(self.settings.remote) if self.settings.remote else "the remote"

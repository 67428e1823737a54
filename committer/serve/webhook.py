"""GitHub's push webhook: verify the signature, answer at once, queue a pull. Pure apart from the secret file.

Only a request signed with the shared secret (HMAC-SHA256 over the raw body, `X-Hub-Signature-256`,
compared in constant time) is acted on; without a configured secret every delivery is refused. Even a
signed body is data: it is parsed with a depth bound (a 400, never a traceback), and a delivery for
another repository than the configured remote (one secret shared by several hooks) is ignored.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from committer.commit.trailer import text, too_deep
from committer.core import logs
from committer.core.secret import signature as signature

log = logs.get("committer.webhook")

DELIVERIES_KEPT = 1024
DEPTH_MAX = 64  # nesting of a payload's arrays and objects; GitHub's push payload nests about 5 deep
_SCP = re.compile(r"^(?:[^@/]+@)?([^:/]+):(.+)$")  # git@github.com:owner/repo.git


@dataclass(frozen=True)
class Reply:
    """The HTTP answer to one delivery."""

    status: int
    body: dict[str, Any]


class WebhookReceiver:
    """Decides what a delivery means; `on_push` queues a pull and must return at once."""

    def __init__(
        self,
        branch: str,
        secret: Callable[[], str | None],
        on_push: Callable[[str | None], None],
        on_forced: Callable[[str | None], None],
        remote: str | None = None,
    ) -> None:
        self.ref = f"refs/heads/{branch}"
        self.remote = repository_key(remote) if remote else None
        self._secret = secret
        self._on_push = on_push
        self._on_forced = on_forced
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """Verify, de-duplicate and act on one delivery; never raises for bad input."""
        lower = {k.lower(): v for k, v in headers.items()}
        delivery = lower.get("x-github-delivery", "")
        event = lower.get("x-github-event", "")
        secret = self._secret()
        if secret is None:
            log.warning("webhook_refused", reason="no webhook secret configured", delivery=delivery)
            return Reply(403, {"error": "webhook_secret is not configured on this daemon"})
        sent = lower.get("x-hub-signature-256", "")
        if not sent:
            log.warning("webhook_refused", reason="missing X-Hub-Signature-256", delivery=delivery)
            return Reply(401, {"error": "missing X-Hub-Signature-256"})
        if not hmac.compare_digest(sent.strip().encode(), signature(secret, body).encode()):
            log.warning("webhook_refused", reason="bad signature", delivery=delivery)
            return Reply(401, {"error": "signature does not match"})
        if delivery and self._repeated(delivery):
            log.info("webhook", github_event=event, delivery=delivery, action="duplicate")
            return Reply(200, {"action": "duplicate", "delivery": delivery})
        if event == "ping":
            log.info("webhook", github_event="ping", delivery=delivery, action="pong")
            return Reply(200, {"action": "pong"})
        if event != "push":
            log.info("webhook", github_event=event, delivery=delivery, action="ignored")
            return Reply(200, {"action": "ignored", "reason": f"event {event or 'unnamed'} is not acted on"})
        payload = _payload(lower.get("content-type", ""), body)
        if payload is None:
            log.warning("webhook_refused", reason="payload not a JSON object of bounded depth", delivery=delivery)
            return Reply(400, {"error": f"the push payload is not a JSON object nested at most {DEPTH_MAX} deep"})
        return self._push(payload, delivery)

    def _push(self, payload: Mapping[str, Any], delivery: str) -> Reply:
        named = payload_repository(payload)
        if self.remote is not None and named is not None and not named.matches(self.remote):
            log.warning("webhook", github_event="push", delivery=delivery, action="ignored",
                        repository=named.shown, reason="the delivery is for another repository than the remote")
            return Reply(202, {"action": "ignored", "reason": f"{named.shown} is not this daemon's remote"})
        ref, after = payload.get("ref"), payload.get("after")
        head = after if isinstance(after, str) and after.strip("0") else None
        if ref != self.ref:
            log.info("webhook", github_event="push", delivery=delivery, ref=ref, action="ignored")
            return Reply(200, {"action": "ignored", "reason": f"{ref} is not {self.ref}"})
        if payload.get("deleted") is True:
            log.warning("webhook", github_event="push", delivery=delivery, ref=ref, action="ignored",
                        reason="the branch was deleted on the remote; nothing is deleted here")
            return Reply(200, {"action": "ignored", "reason": "branch deleted on the remote"})
        if payload.get("forced") is True:
            self._on_forced(head)
            return Reply(200, {"action": "refused", "reason": "forced update; see committer status"})
        log.info("webhook", github_event="push", delivery=delivery, ref=ref, after=head, action="pull_queued")
        self._on_push(head)
        return Reply(202, {"action": "pull_queued", "after": head})

    def _repeated(self, delivery: str) -> bool:
        with self._lock:
            if delivery in self._seen:
                return True
            self._seen[delivery] = None
            while len(self._seen) > DELIVERIES_KEPT:
                self._seen.popitem(last=False)
            return False


def _payload(content_type: str, body: bytes) -> dict[str, Any] | None:
    """The push event: JSON, or GitHub's form encoding (a `payload` field holding the JSON)."""
    raw: bytes | str = body
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8", "replace"))
        raw = (fields.get("payload") or [""])[0]
    if too_deep(raw, DEPTH_MAX):
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8), or nested past what the parser takes
        return None
    return value if isinstance(value, dict) else None


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


def payload_repository(payload: Mapping[str, Any]) -> Named | None:
    """The repository a push delivery names, or None when it names none (then it is acted on as before)."""
    repo = payload.get("repository")
    if not isinstance(repo, dict):
        return None
    keys = tuple(repository_key(v) for k in ("clone_url", "html_url", "ssh_url", "git_url", "url")
                 if isinstance(v := repo.get(k), str) and v)
    full_name = repo.get("full_name")
    name = full_name.strip().strip("/") if isinstance(full_name, str) and full_name.strip() else None
    if not keys and name is None:
        return None
    return Named(keys, name)

"""GitHub's push webhook: verify the signature, answer at once, queue a pull. Pure apart from the secret file.

Only a request signed with the shared secret (HMAC-SHA256 over the raw body, `X-Hub-Signature-256`,
compared in constant time) is acted on; without a configured secret every delivery is refused.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from committer.core import logs
from committer.core.secret import signature as signature

log = logs.get("committer.webhook")

DELIVERIES_KEPT = 1024


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
    ) -> None:
        self.ref = f"refs/heads/{branch}"
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
            return Reply(400, {"error": "the push payload is not JSON"})
        return self._push(payload, delivery)

    def _push(self, payload: Mapping[str, Any], delivery: str) -> Reply:
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
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None

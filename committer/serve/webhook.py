"""The push webhook: verify the delivery, answer at once, queue a pull. Pure apart from the secret file.

The remote's forge checks a delivery: only one signed with the shared secret (for GitHub an HMAC-SHA256
over the raw body, `X-Hub-Signature-256`, compared in constant time) is acted on; without a configured
secret every delivery is refused. Even a signed body is data: it is parsed with a depth bound (a 400,
never a traceback), and a delivery for another repository than the configured remote (one secret shared
by several hooks) is ignored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from committer.core import logs
from committer.core.secret import signature as signature
from committer.sync.forge import DEPTH_MAX, Forge, PushEvent, Refusal
from committer.sync.forge import repository_key as repository_key
from committer.sync.forges import forge_for

log = logs.get("committer.webhook")

DELIVERIES_KEPT = 1024
# Headers a delivery carries before its body is read, as the default forge (no remote given) sends them.
DELIVERY_HEADERS = forge_for("").delivery_headers


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
        forge: Forge | None = None,
    ) -> None:
        self.ref = f"refs/heads/{branch}"
        self.remote = repository_key(remote) if remote else None
        self.forge = forge if forge is not None else forge_for(remote or "")
        self._secret = secret
        self._on_push = on_push
        self._on_forced = on_forced
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """Verify, de-duplicate and act on one delivery; never raises for bad input."""
        verdict = self.forge.verify_delivery(headers, body, self._secret())
        if isinstance(verdict, Refusal):
            log.warning("webhook_refused", reason=verdict.reason, delivery=verdict.delivery)
            return Reply(verdict.status, {"error": verdict.error})
        delivery, event, fields = verdict.id, verdict.event, verdict.fields
        if delivery and self._repeated(delivery):
            log.info("webhook", **fields, delivery=delivery, action="duplicate")
            return Reply(200, {"action": "duplicate", "delivery": delivery})
        if event == "ping":
            log.info("webhook", **fields, delivery=delivery, action="pong")
            return Reply(200, {"action": "pong"})
        if event != "push":
            log.info("webhook", **fields, delivery=delivery, action="ignored")
            return Reply(200, {"action": "ignored", "reason": f"event {event or 'unnamed'} is not acted on"})
        if verdict.push is None:
            log.warning("webhook_refused", reason="payload not a JSON object of bounded depth", delivery=delivery)
            return Reply(400, {"error": f"the push payload is not a JSON object nested at most {DEPTH_MAX} deep"})
        return self._push(verdict.push, delivery, fields)

    def _push(self, push: PushEvent, delivery: str, fields: Mapping[str, str]) -> Reply:
        named, ref, head = push.repository, push.ref, push.head
        if self.remote is not None and named is not None and not named.matches(self.remote):
            log.warning("webhook", **fields, delivery=delivery, action="ignored",
                        repository=named.shown, reason="the delivery is for another repository than the remote")
            return Reply(202, {"action": "ignored", "reason": f"{named.shown} is not this daemon's remote"})
        if ref != self.ref:
            log.info("webhook", **fields, delivery=delivery, ref=ref, action="ignored")
            return Reply(200, {"action": "ignored", "reason": f"{ref} is not {self.ref}"})
        if push.deleted:
            log.warning("webhook", **fields, delivery=delivery, ref=ref, action="ignored",
                        reason="the branch was deleted on the remote; nothing is deleted here")
            return Reply(200, {"action": "ignored", "reason": "branch deleted on the remote"})
        if push.forced:
            self._on_forced(head)
            return Reply(200, {"action": "refused", "reason": "forced update; see committer status"})
        log.info("webhook", **fields, delivery=delivery, ref=ref, after=head, action="pull_queued")
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

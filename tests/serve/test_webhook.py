"""The push webhook's decisions (pure) and its secret sources; the daemon end to end is in test_daemon_pull."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from structlog.testing import capture_logs

from committer.core.secret import WEBHOOK, webhook_secret
from committer.serve.webhook import WebhookReceiver, signature

SECRET = "It's a Secret to Everybody"


class Receiver:
    """A WebhookReceiver whose pulls and refusals are recorded."""

    def __init__(self, secret: str | None = SECRET) -> None:
        self.pulls: list[str | None] = []
        self.forced: list[str | None] = []
        self.secret = secret
        self.receiver = WebhookReceiver("main", lambda: self.secret, self.pulls.append, self.forced.append)

    def send(self, event: str, payload: dict[str, object] | bytes, delivery: str = "d-1",
             sign: str | None = "good", content_type: str = "application/json") -> tuple[int, dict[str, object]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if content_type == "application/x-www-form-urlencoded":
            body = urlencode({"payload": body.decode()}).encode()
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": content_type}
        if sign == "good":
            headers["X-Hub-Signature-256"] = signature(SECRET, body)
        elif sign is not None:
            headers["X-Hub-Signature-256"] = sign
        reply = self.receiver.handle(headers, body)
        return reply.status, reply.body


def push(ref: str = "refs/heads/main", forced: bool = False, after: str = "a" * 40) -> dict[str, object]:
    return {"ref": ref, "before": "b" * 40, "after": after, "forced": forced, "deleted": False}


def test_signature_matches_githubs_documented_example() -> None:
    # From GitHub's "Validating webhook deliveries" documentation.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature(SECRET, b"Hello, World!") == expected


def test_a_signed_push_to_the_branch_queues_a_pull() -> None:
    hook = Receiver()
    assert hook.send("push", push()) == (202, {"action": "pull_queued", "after": "a" * 40})
    assert hook.pulls == ["a" * 40]


def test_missing_and_bad_signatures_are_refused() -> None:
    hook = Receiver()
    assert hook.send("push", push(), sign=None)[0] == 401
    assert hook.send("push", push(), sign="sha256=" + "0" * 64, delivery="d-2")[0] == 401
    assert hook.send("push", push(), sign="sha1=whatever", delivery="d-3")[0] == 401
    assert hook.pulls == []


def test_a_body_changed_after_signing_is_refused() -> None:
    hook = Receiver()
    body = json.dumps(push()).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "x", "X-Hub-Signature-256": signature(SECRET, body)}
    assert hook.receiver.handle(headers, body.replace(b"main", b"mair")).status == 401
    assert hook.pulls == []


def test_without_a_configured_secret_nothing_is_accepted() -> None:
    hook = Receiver(secret=None)
    status, body = hook.send("push", push())
    assert status == 403 and "webhook_secret" in str(body["error"])
    assert hook.pulls == []


def test_ping_is_answered() -> None:
    assert Receiver().send("ping", {"zen": "Design for failure.", "hook_id": 1}) == (200, {"action": "pong"})


def test_another_branch_and_other_events_are_ignored() -> None:
    hook = Receiver()
    status, body = hook.send("push", push(ref="refs/heads/feature"))
    assert status == 200 and body["action"] == "ignored"
    status, body = hook.send("issues", {"action": "opened"}, delivery="d-2")
    assert status == 200 and body["action"] == "ignored"
    assert hook.pulls == []


def test_a_repeated_delivery_is_acted_on_once() -> None:
    hook = Receiver()
    assert hook.send("push", push(), delivery="same")[0] == 202
    assert hook.send("push", push(), delivery="same") == (200, {"action": "duplicate", "delivery": "same"})
    assert hook.send("push", push(), delivery="other")[0] == 202
    assert len(hook.pulls) == 2


def test_an_unsigned_request_cannot_use_up_a_delivery_id() -> None:
    hook = Receiver()
    assert hook.send("push", push(), delivery="target", sign=None)[0] == 401
    assert hook.send("push", push(), delivery="target")[0] == 202


def test_a_forced_update_is_refused_not_pulled() -> None:
    hook = Receiver()
    status, body = hook.send("push", push(forced=True, after="c" * 40))
    assert status == 200 and body["action"] == "refused"
    assert hook.forced == ["c" * 40] and hook.pulls == []


def test_a_deleted_branch_is_ignored() -> None:
    hook = Receiver()
    payload = {**push(after="0" * 40), "deleted": True}
    assert hook.send("push", payload)[1]["action"] == "ignored"
    assert hook.pulls == []


def test_form_encoded_deliveries_and_bad_json() -> None:
    hook = Receiver()
    assert hook.send("push", push(), content_type="application/x-www-form-urlencoded")[0] == 202
    assert hook.send("push", b"{not json", delivery="d-2")[0] == 400


def test_the_secret_comes_from_env_then_file_then_systemd_credential(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "webhook_secret").write_text("from-credential\n")
    assert webhook_secret(secret_file, {WEBHOOK.env or "": "from-env"}) == "from-env"
    assert webhook_secret(secret_file, {"CREDENTIALS_DIRECTORY": str(creds)}) == "from-file"
    assert webhook_secret(None, {"CREDENTIALS_DIRECTORY": str(creds)}) == "from-credential"
    assert webhook_secret(None, {}) is None
    assert webhook_secret(tmp_path / "missing", {}) is None


def test_a_credentials_directory_it_may_not_read_means_no_secret_and_an_error_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_file", denied)
    monkeypatch.setattr(Path, "read_bytes", denied)
    with capture_logs() as events:
        assert webhook_secret(None, {"CREDENTIALS_DIRECTORY": str(creds)}) is None
    assert [e["event"] for e in events] == ["webhook_secret_unreadable"]


def test_a_rotated_secret_file_applies_to_the_next_delivery(tmp_path: Path) -> None:
    rotated = "new secret"
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    pulls: list[str | None] = []
    receiver = WebhookReceiver("main", lambda: webhook_secret(secret_file, {}), pulls.append, lambda _h: None)
    body = json.dumps(push()).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "1", "X-Hub-Signature-256": signature(SECRET, body)}
    assert receiver.handle(headers, body).status == 202
    secret_file.write_text(rotated)
    assert receiver.handle({**headers, "X-GitHub-Delivery": "2"}, body).status == 401
    new = {**headers, "X-GitHub-Delivery": "3", "X-Hub-Signature-256": signature(rotated, body)}
    assert receiver.handle(new, body).status == 202

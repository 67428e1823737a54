"""The pages off on an address other than loopback without a token is the expected container set-up: one
info line at start, not a warning."""

from __future__ import annotations

from structlog.testing import capture_logs

from committer.serve.access import Access


def test_pages_off_is_an_info_line_keeping_its_way_out() -> None:
    with capture_logs() as logs:
        access = Access.decide("0.0.0.0", lambda: None)
    assert access.mode == "off"
    [line] = [e for e in logs if e["event"] == "pages_off"]
    assert line["log_level"] == "info" and "ui_token_file" in line["action"]

"""The holds in a real headless Chromium against a running daemon: a held mass deletion put back and then
confirmed with the banner's buttons, a held secret reviewed and saved as "not a secret"; the repository and
the data directory checked after each click.

With COMMITTER_SCREENSHOTS=docs/images the banners are saved there as holds.png and secret.png (the manual's
pictures, docs/safety.md) and their phone-* twins; otherwise under the test's temporary directory.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProcess, Layout, git, tree_files, wait_for
from tests.serve.shots import body_text, browser, keep
from tests.serve.test_pages_browser import free_port, head, trailers

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]
TOKEN = "ghp_" + "Zq8Lm3Rt7Vx1Bn5Kc9Hd2Fg6Js4Pw0Ye8Ua3M"[:36]
__all__ = ["browser"]  # the module's Chromium (tests/serve/shots.py)


@pytest.fixture
def site(layout: Layout, start_daemon: Start, mirror: Path) -> tuple[str, DaemonProcess]:
    """A daemon holding any batch that deletes more than 3 files, serving the pages, pushing to a mirror."""
    (layout.data / "kb").mkdir()
    for n in range(6):
        (layout.data / "kb" / f"note-{n}.md").write_text(f"# Note {n}\n\nkept safe\n")
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}", "--remote", f"file://{mirror}",
                          env={"COMMITTER_PUSH_INTERVAL": "200ms", "COMMITTER_MAX_DELETE": "3"})
    return f"http://127.0.0.1:{port}", daemon


def pushed(layout: Layout, mirror: Path) -> None:
    """Wait until the mirror has HEAD: the banner then speaks of holds only, not of a first push."""
    def there() -> bool:
        out = subprocess.run(["git", f"--git-dir={mirror}", "rev-parse", "--verify", "-q", "main"],
                             capture_output=True, text=True, check=False).stdout.strip()
        return out == head(layout)

    wait_for(there, timeout=20, what="the first push")


def held_shown(browser: Any, base: str) -> bool:
    browser.get(f"{base}/")
    return bool(browser.find_elements("id", "hold"))


def delete_five(layout: Layout) -> None:
    for n in range(5):
        (layout.data / "kb" / f"note-{n}.md").unlink()


def test_put_them_back_then_confirm_these_deletions(
        browser: Any, site: tuple[str, DaemonProcess], layout: Layout, mirror: Path, tmp_path: Path) -> None:
    base, daemon = site
    wait_for(lambda: len(tree_files(layout.git_dir)) == 6, timeout=15, what="the notes committed")
    pushed(layout, mirror)
    delete_five(layout)
    wait_for(lambda: held_shown(browser, base), timeout=20, what="the hold on the page")
    before = head(layout)
    text = browser.find_element("id", "hold").text
    assert "5 files were deleted at once; nothing was committed. Confirm if you meant it, or put them back." in text
    assert all(f"kb/note-{n}.md" in text for n in range(5))
    banner = browser.find_element("id", "banner").text
    assert "everything is backed up" not in banner and "and deletions are on hold" in banner
    keep(browser, "holds", tmp_path)

    browser.find_element("id", "put-back").click()
    wait_for(lambda: "written back" in body_text(browser), timeout=20, what="the put-back answer")
    assert "5 files written back into the data folder" in body_text(browser)
    assert not browser.find_elements("id", "hold")  # the answer's own banner no longer offers the buttons
    for n in range(6):
        assert (layout.data / "kb" / f"note-{n}.md").read_text() == f"# Note {n}\n\nkept safe\n"
    assert head(layout) == before and len(tree_files(layout.git_dir)) == 6
    wait_for(lambda: not held_shown(browser, base), timeout=15, what="the hold gone from the page")

    delete_five(layout)
    wait_for(lambda: held_shown(browser, base), timeout=20, what="the hold on the page again")
    browser.find_element("id", "confirm-deletes").click()
    wait_for(lambda: "/commit/" in browser.current_url, timeout=20, what="the confirmed deletion's commit")
    assert tree_files(layout.git_dir) == {"kb/note-5.md"}
    assert browser.current_url.endswith(f"/commit/{head(layout)}")
    assert trailers(layout)[0]["op"] == "confirm-deletes" and trailers(layout)[0]["deleted"] == 5
    assert not any((layout.data / "kb" / f"note-{n}.md").exists() for n in range(5))
    assert daemon.proc.poll() is None


def test_it_is_not_a_secret_saves_the_file_once(
        browser: Any, site: tuple[str, DaemonProcess], layout: Layout, mirror: Path, tmp_path: Path) -> None:
    base, _daemon = site
    wait_for(lambda: len(tree_files(layout.git_dir)) == 6, timeout=15, what="the notes committed")
    pushed(layout, mirror)
    (layout.data / "kb" / "setup.md").write_text(f"# Setup\n\nThe docs' example token:\n{TOKEN}\n")

    def secret_shown() -> bool:
        browser.get(f"{base}/")
        return bool(browser.find_elements("id", "secret-1"))

    wait_for(secret_shown, timeout=20, what="the held secret on the page")
    text = browser.find_element("id", "secret-1").text
    assert "kb/setup.md was not saved: it looks like it holds a secret" in text and "It has no backup" in text
    assert TOKEN not in browser.page_source
    keep(browser, "secret", tmp_path)

    browser.find_element("css selector", "#secret-1 a.review").click()
    wait_for(lambda: "secret-found" in browser.page_source, timeout=15, what="the review page")
    assert "on line 4 of kb/setup.md" in browser.find_element("id", "secret-found").text
    assert TOKEN not in browser.page_source
    browser.find_element("id", "not-a-secret").click()
    wait_for(lambda: "/commit/" in browser.current_url, timeout=20, what="the commit of the file")
    assert "kb/setup.md" in tree_files(layout.git_dir)
    meta = trailers(layout)[0]
    assert meta["allowed_secret"] == "kb/setup.md" and meta["op"] == "allow-secret"
    assert git(layout.git_dir, "show", "HEAD:kb/setup.md").endswith(f"{TOKEN}\n")

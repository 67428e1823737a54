"""What a person sees of notes, pictures and changes in a real headless Chromium: a rendered note, a
picture inline, a changed picture old beside new, side by side that fits a desktop and falls back to
one column on a phone, and dark mode.

With COMMITTER_SCREENSHOTS=docs/images set, the tests also save the manual's screenshots there
(desktop 1280 and phone 390 CSS pixels wide); without it they write nothing outside their temporary
directory.
"""

from __future__ import annotations

import contextlib
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from committer.commit.committer import Committer
from committer.serve.access import Access
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, wait_for
from tests.serve.shots import DESKTOP, PHONE, browser, folder, keep
from tests.serve.test_pages import perform

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the module's Chromium (tests/serve/shots.py)


def picture(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """A real PNG drawn pixel by pixel."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def garden(sun: bool) -> bytes:
    """A small drawing: sky, grass, and (in the second version) a sun."""
    def pixel(x: int, y: int) -> tuple[int, int, int]:
        if sun and (x - 230) ** 2 + (y - 50) ** 2 < 28 ** 2:
            return (250, 200, 40)
        if y > 130 + (x % 60 < 30) * 4:
            return (70, 150, 70)
        return (150, 190, 235) if sun else (120, 130, 150)
    return picture(320, 200, pixel)


NOTE = """# Trip to the lakes

Plans for **June**, kept with the [packing list](packing.md) and the [weather](https://example.com/weather).

![The garden](garden.png)

## Days

| Day | Where | Notes |
| --- | --- | --- |
| 1 | Keswick | arrive by train, walk to the lake |
| 2 | Catbells | short climb, *bring water* |

- book the rooms
- ask Sam about the car

> Leave early: the roads are busy after nine.

<script>alert("never runs")</script> [inert](javascript:alert(1))
"""

LONG = ("We agreed to move the release to the {week} week of the month, after the translations are reviewed "
        "by the team in Lisbon and {shots} retaken.")
PLAN_BEFORE = "\n".join(["# Weekly meeting", "", "Attendees: Ana, Ben, Chloé",
                          LONG.format(week="second", shots="the screenshots are"),
                          "Budget: unchanged.", "Next meeting: Tuesday.", ""])
PLAN_AFTER = "\n".join(["# Weekly meeting", "", "Attendees: Ana, Ben, Chloé, Dara",
                         LONG.format(week="third", shots="every screenshot in the manual is"),
                         "Budget: unchanged.", "Next meeting: Thursday, at ten.", ""])


@dataclass
class Site:
    base: str
    pipeline: Committer
    layout: Layout

    def commit(self, files: dict[str, str | bytes]) -> str:
        for name, content in files.items():
            write(self.layout, name, content)
        return str(self.pipeline.commit(list(files)).sha)


@contextlib.contextmanager
def served(pipeline: Committer) -> Iterator[str]:
    """The pages of `pipeline`'s repository on loopback, everything pushed a moment ago; their address."""
    state = {"push": {"remote": "https://github.com/me/notes.git", "pending_commits": 0,
                      "last_push_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    pages = Pages(pipeline.repo, Access("open"), lambda: state, perform(pipeline))
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=pages)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def site(layout: Layout) -> Iterator[Site]:
    pipeline = make_pipeline(layout)
    with served(pipeline) as base:
        yield Site(base, pipeline, layout)


def loaded(driver: Any, selector: str) -> list[int]:
    """The natural widths of the pictures `selector` finds, once each has loaded (0: not loaded)."""
    script = ("return Array.from(document.querySelectorAll(arguments[0]))"
              ".map(i => i.complete ? i.naturalWidth : 0)")
    return list(driver.execute_script(script, selector))


@contextlib.contextmanager
def viewport(driver: Any, width: int, dark: bool = False) -> Iterator[None]:
    """The page laid out `width` CSS pixels wide (a phone below 600), in dark mode when asked."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    if dark:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_note_is_rendered_with_its_picture(browser: Any, site: Site, tmp_path: Path) -> None:
    rev = site.commit({"trips/lakes.md": NOTE, "trips/garden.png": garden(True), "trips/packing.md": "- boots\n"})
    browser.get(f"{site.base}/view/{rev}/trips/lakes.md")
    note = browser.find_element("id", "note")
    assert note.find_element("tag name", "h1").text == "Trip to the lakes"
    assert len(note.find_elements("css selector", "table tr")) == 3
    assert not browser.find_elements("css selector", "#note script")
    assert "never runs" in note.text  # shown as the text it is
    hrefs = browser.execute_script("return Array.from(document.querySelectorAll('#note [href], #note [src]'))"
                                   ".map(e => e.href || e.src)")
    assert hrefs and not [h for h in hrefs if not h.startswith(("http:", "https:", "mailto:"))], hrefs
    packing = note.find_element("link text", "packing list").get_attribute("href")
    assert packing == f"{site.base}/view/{rev}/trips/packing.md"
    wait_for(lambda: loaded(browser, "#note img") == [320], what="the note's picture to load")
    keep(browser, "note", tmp_path)
    browser.find_element("link text", "source").click()
    wait_for(lambda: browser.find_elements("css selector", "pre.content"), what="the note's source")
    assert "# Trip to the lakes" in browser.find_element("css selector", "pre.content").text


def test_a_picture_is_shown_and_a_changed_one_old_beside_new(browser: Any, site: Site, tmp_path: Path) -> None:
    before = site.commit({"garden.png": garden(False)})
    after = site.commit({"garden.png": garden(True)})
    browser.get(f"{site.base}/view/{before}/garden.png")
    wait_for(lambda: loaded(browser, "figure.picture img") == [320], what="the picture to load")
    browser.get(f"{site.base}/commit/{after}")
    wait_for(lambda: loaded(browser, ".pictures img") == [320, 320], what="both versions of the picture to load")
    old, new = browser.find_elements("css selector", ".pictures img")
    assert old.get_attribute("src").endswith(f"/raw/{before}/garden.png")
    assert new.get_attribute("src").endswith(f"/raw/{after}/garden.png")
    captions = [f.text for f in browser.find_elements("css selector", ".pictures figcaption")]
    assert captions == ["Before", "After"]
    with viewport(browser, DESKTOP):
        assert old.location["y"] == new.location["y"] and old.location["x"] < new.location["x"]  # side by side
    keep(browser, "pictures", tmp_path)
    browser.get(f"{site.base}/file/garden.png")
    wait_for(lambda: loaded(browser, "img.thumb") == [320, 320], what="a small picture of each version")


def test_side_by_side_fits_a_desktop_and_is_one_column_on_a_phone(browser: Any, site: Site, tmp_path: Path) -> None:
    site.commit({"meetings/weekly.md": PLAN_BEFORE})
    rev = site.commit({"meetings/weekly.md": PLAN_AFTER})
    browser.get(f"{site.base}/commit/{rev}?view=split")
    wait_for(lambda: browser.find_elements("css selector", "table.split"), what="the side-by-side table")
    widths = ("return Array.from(document.querySelectorAll(arguments[0])).map(e => e.getBoundingClientRect().width)")
    with viewport(browser, DESKTOP):
        gutters = browser.execute_script(widths, "table.split td.no")
        texts = browser.execute_script(widths, "table.split td.add, table.split td.del")
        assert gutters and max(gutters) < 80, gutters  # narrow line numbers
        assert min(texts) > 450, texts  # the text gets the width
    with viewport(browser, PHONE):
        page = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert page[0] <= page[1], page  # no horizontal scroll
        long_line = browser.execute_script(
            "return Array.from(document.querySelectorAll('table.split td.add'))"
            ".filter(td => td.textContent.includes('third week'))[0].getBoundingClientRect()")
        assert long_line["width"] > 250, long_line  # whole lines, not a word or two of each half
        left, right = (browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]))"
            ".filter(td => td.textContent.includes('week of the month'))[0].getBoundingClientRect().left", sel)
            for sel in ("table.split td.del", "table.split td.add"))
        assert abs(left - right) < 2  # one column: old above new
        unchanged = browser.execute_script(
            "return Array.from(document.querySelectorAll('table.split td'))"
            ".filter(td => td.textContent === 'Budget: unchanged.' && td.offsetParent !== null).length")
        assert unchanged == 1  # an unchanged line once
    keep(browser, "diff", tmp_path)


def test_dark_mode_follows_the_system(browser: Any, site: Site, tmp_path: Path) -> None:
    site.commit({"meetings/weekly.md": PLAN_BEFORE})
    rev = site.commit({"meetings/weekly.md": PLAN_AFTER})
    browser.get(f"{site.base}/commit/{rev}?view=split")
    colour = "return getComputedStyle(document.querySelector(arguments[0])).backgroundColor"

    def brightness(css: str) -> float:
        parts = [float(p) for p in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
        return sum(parts) / 3

    assert brightness(browser.execute_script(colour, "body")) > 200
    with viewport(browser, DESKTOP, dark=True):
        assert brightness(browser.execute_script(colour, "body")) < 60
        assert brightness(browser.execute_script(colour, "table.split td.add")) < 100  # diff colours too
        text = browser.execute_script("return getComputedStyle(document.body).color")
        assert brightness(text) > 180
        browser.save_screenshot(str(folder(tmp_path) / "dark.png"))

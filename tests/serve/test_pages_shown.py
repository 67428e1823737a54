"""What the history pages show a file as, over real HTTP on a real repository: a Markdown note rendered
with nothing active in it, pictures served inline as their own type (known by their content) under a
CSP that allows nothing else, a changed picture old beside new; everything else still a download."""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from committer.commit.committer import Committer
from committer.git import lfs
from committer.serve import markdown
from committer.serve.access import Access
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout
from tests.serve.test_pages import IDENTITY, Answer, fetch, perform


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00" \
      b"\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
HOSTILE_NOTE = """# Plan

<script>alert('x')</script>
<img src=x onerror="alert(1)">

[click](javascript:alert(1)) [upper](JAVASCRIPT:alert(2)) [spaced]( javascript:alert(3))
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) [vb](vbscript:msgbox(1))
![tracker](https://example.com/t.png) ![inline](data:image/png;base64,AAAA)
<javascript:alert(4)> [home](https://example.com/) [mail](mailto:me@example.com)
[sibling](other.md#part-2) [up](../top.md) [out](../../../etc/passwd) ![pic](pic.png)
"""


@dataclass
class Site:
    port: int
    pipeline: Committer
    layout: Layout

    def get(self, path: str) -> Answer:
        return fetch(self.port, path)

    def commit(self, files: dict[str, str | bytes]) -> str:
        for name, content in files.items():
            write(self.layout, name, content)
        return str(self.pipeline.commit(list(files)).sha)


@pytest.fixture
def site(layout: Layout) -> Iterator[Site]:
    pipeline = make_pipeline(layout)
    pages = Pages(pipeline.repo, Access("open"), lambda: {"push": {}}, perform(pipeline))
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=pages)
    server.start()
    yield Site(server.port, pipeline, layout)
    server.stop()


def test_a_markdown_note_is_rendered_with_nothing_active_in_it(site: Site) -> None:
    rev = site.commit({"notes/plan.md": HOSTILE_NOTE, "notes/pic.png": png(2, 2, (200, 0, 0))})
    page = site.get(f"/view/{rev}/notes/plan.md")
    assert page.status == 200
    note = page.text[page.text.index('id="note"'):page.text.index("</article>")]
    assert "<h1>Plan</h1>" in note
    assert "<script" not in note and "&lt;script&gt;" in note
    assert "<img src=x" not in note and "onerror=" not in note.replace("onerror=&quot;", "")
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', note)
    assert not [h for h in hrefs if re.match(r"\s*(javascript|data|vbscript):", h, re.I)], hrefs
    assert "javascript:" not in "".join(hrefs).lower()
    assert 'href="https://example.com/"' in note and 'href="mailto:me@example.com"' in note
    assert f'href="/view/{rev}/notes/other.md#part-2"' in note and f'href="/view/{rev}/top.md"' in note
    assert f'src="/raw/{rev}/notes/pic.png"' in note  # a picture of the same revision, from /raw
    assert 'src="https://example.com' not in note  # no picture from elsewhere: a link to it
    assert "etc/passwd" not in "".join(hrefs)
    assert 'href="?source=1"' in page.text
    source = site.get(f"/view/{rev}/notes/plan.md?source=1").text
    assert 'id="note"' not in source and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in source
    assert "<script>alert" not in source


def test_a_note_too_long_to_render_in_time_is_shown_as_text(site: Site) -> None:
    rev = site.commit({"long.md": "# Long\n\n" + "![" * 20_000, "fine.md": "# Fine\n\n" + "words " * 8000})
    long = site.get(f"/view/{rev}/long.md").text
    assert 'id="note"' not in long and "too long to show as it reads" in long and "# Long" in long
    assert 'id="note"' in site.get(f"/view/{rev}/fine.md").text


def test_only_markdown_files_are_rendered(site: Site) -> None:
    rev = site.commit({"readme.txt": "# not a heading\n", "page.html": "<h1>x</h1>\n"})
    assert "<h1>not a heading" not in site.get(f"/view/{rev}/readme.txt").text
    html = site.get(f"/view/{rev}/page.html").text
    assert "&lt;h1&gt;x&lt;/h1&gt;" in html and 'id="note"' not in html


def test_links_resolve_within_the_revision() -> None:
    assert markdown.target("b.md", "abc", "notes/a.md", "view") == "/view/abc/notes/b.md"
    assert markdown.target("/top.md", "abc", "notes/a.md", "view") == "/view/abc/top.md"
    assert markdown.target("sub/pic%20one.png", "abc", "a.md", "raw") == "/raw/abc/sub/pic%20one.png"
    assert markdown.target("../../x", "abc", "notes/a.md", "view") is None
    assert markdown.target("//evil.example/x", "abc", "a.md", "view") is None
    assert markdown.target("#part", "abc", "a.md", "view") == "#part"
    assert markdown.target("../photos/", "abc", "notes/a.md", "view") == "/file/photos"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:x", "data:text/html,x", "vbscript:x", "file:///etc/passwd"):
        assert markdown.target(bad, "abc", "a.md", "view") is None


@pytest.mark.parametrize(("name", "content", "kind"), [
    ("photo.png", png(3, 2, (0, 128, 255)), "image/png"), ("photo.jpg", JPEG, "image/jpeg"),
    ("anim.gif", GIF, "image/gif"), ("pic.webp", WEBP, "image/webp"),
    ("no-extension", png(1, 1, (0, 0, 0)), "image/png"),
])
def test_a_picture_is_served_inline_as_its_own_type(site: Site, name: str, content: bytes, kind: str) -> None:
    rev = site.commit({name: content})
    raw = site.get(f"/raw/{rev}/{name}")
    assert raw.status == 200 and raw.body == content
    assert raw.headers["content-type"] == kind
    assert raw.headers["content-disposition"].startswith("inline;")
    csp = raw.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src 'self'" in csp and "script" not in csp
    assert raw.headers["x-content-type-options"] == "nosniff"
    view = site.get(f"/view/{rev}/{name}").text
    assert f'<img src="/raw/{rev}/{name}"' in view


@pytest.mark.parametrize(("name", "content"), [
    ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'),
    ("page.html", b"<html><script>alert(1)</script></html>"),
    ("fake.png", b"<html><body><script>alert(1)</script></body></html>"),
    ("almost.png", b"\x89PNG but not the real signature"),
])
def test_anything_else_stays_a_download_whatever_its_name(site: Site, name: str, content: bytes) -> None:
    rev = site.commit({name: content})
    raw = site.get(f"/raw/{rev}/{name}")
    assert raw.status == 200 and raw.body == content
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in raw.headers["content-security-policy"]
    assert raw.headers["x-content-type-options"] == "nosniff"
    view = site.get(f"/view/{rev}/{name}").text
    assert "<img src=" not in view and "<script>alert" not in view and "<svg" not in view


def test_a_changed_picture_is_shown_old_beside_new(site: Site) -> None:
    first = site.commit({"photo.png": png(4, 4, (255, 0, 0))})
    second = site.commit({"photo.png": png(4, 4, (0, 0, 255))})
    page = site.get(f"/commit/{second}").text
    assert "binary file" not in page
    section = page[page.index('class="pictures"'):]
    assert section.index(f'src="/raw/{first}/photo.png"') < section.index(f'src="/raw/{second}/photo.png"')
    assert "Before" in section and "After" in section
    added = site.get(f"/commit/{first}").text
    assert f'src="/raw/{first}/photo.png"' in added and "Added" in added


def test_an_lfs_picture_is_served_from_the_store_inline(site: Site) -> None:
    content = png(5, 5, (10, 200, 10))
    oid = hashlib.sha256(content).hexdigest()
    store = lfs.object_path(site.layout.git_dir, oid)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(content)
    base = site.commit({"seed.md": "x\n"})

    def plumbing(*args: str, data: bytes) -> str:
        return subprocess.run(["git", f"--git-dir={site.layout.git_dir}", *args], input=data, capture_output=True,
                              check=True, env={**os.environ, **IDENTITY}).stdout.decode().strip()

    blob = plumbing("hash-object", "-w", "--stdin", data=lfs.pointer(oid, len(content)))
    tree = plumbing("mktree", data=f"100644 blob {blob}\tbig.png\n".encode())
    commit = plumbing("commit-tree", tree, "-p", base, "-m", "an LFS picture", data=b"")
    raw = site.get(f"/raw/{commit}/big.png")
    assert raw.status == 200 and raw.body == content and raw.headers["content-type"] == "image/png"
    assert raw.headers["content-disposition"].startswith("inline;")
    assert f'<img src="/raw/{commit}/big.png"' in site.get(f"/view/{commit}/big.png").text
    assert f'src="/raw/{commit}/big.png"' in site.get(f"/commit/{commit}").text
    store.unlink()
    assert site.get(f"/raw/{commit}/big.png").status == 404
    assert "not in this machine" in site.get(f"/view/{commit}/big.png").text

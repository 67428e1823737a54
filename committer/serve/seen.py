"""What a file at a revision is shown as: a picture (PNG, JPEG, GIF, WebP, known by its first bytes), a
rendered Markdown note, or text; and the headers `/raw` serves it with: a picture inline as its own type
under a CSP that allows nothing else, everything else a forced download that no browser renders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from committer.serve import markdown, shown
from committer.serve.history import Blob

RAW_CSP = "default-src 'none'; sandbox"
PICTURE_CSP = "default-src 'none'; img-src 'self'; sandbox"


@dataclass(frozen=True)
class Shown:
    text: str | None  # the file as text (the source of a note too), else None
    note: str | None  # a Markdown note rendered as HTML (safe as it is), else None
    picture: bool  # shown inline from /raw
    long_note: bool = False  # a note too long to render in a page's time: shown as text
    link: bool = False  # a symbolic link: `text` is its target, shown as it is, never followed


def head(blob: Blob) -> bytes:
    """The first bytes of the file's content: from the blob, or from the LFS store for an LFS file."""
    if blob.lfs_object is not None:
        try:
            with blob.lfs_object.open("rb") as handle:
                return handle.read(shown.PICTURE_HEAD)
        except OSError:
            return b""
    return blob.content[: shown.PICTURE_HEAD]


def picture(blob: Blob) -> str | None:
    """The picture type the file is served inline as, by its content; None for anything else."""
    if blob.lfs_missing or blob.link:
        return None
    return shown.picture_type(head(blob))


def shown_as(blob: Blob, source: bool) -> Shown:
    """How the view page shows the file; `source` asks for a note's text instead of its rendering."""
    if blob.lfs_missing:
        return Shown(None, None, False)
    if blob.link:  # never a note nor a picture, whatever its name: the text of its target
        return Shown(blob.content.decode("utf-8", "replace"), None, False, link=True)
    if picture(blob) or (blob.too_big and not blob.lfs and shown.picture_name(blob.path)):
        return Shown(None, None, True)  # a picture too large to look at here: /raw tells by its content
    if blob.binary or blob.too_big:
        return Shown(None, None, False)
    text = blob.content.decode("utf-8", "replace")
    if markdown.is_markdown(blob.path) and not source and not markdown.renderable(text):
        return Shown(text, None, False, long_note=True)
    if markdown.is_markdown(blob.path) and not source:
        # control characters and bidirectional overrides (typed or as entities) shown as \uNNNN, as in text
        return Shown(text, shown.readable(markdown.render(text, blob.rev, blob.path)), False)
    return Shown(text, None, False)


def download(blob: Blob, path: str) -> tuple[str, dict[str, Any]]:
    """The media type and headers `/raw` answers with: a picture inline, anything else an attachment."""
    name = path.rsplit("/", 1)[-1] or "file"
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in name)
    named = f"filename=\"{ascii_name}\"; filename*=UTF-8''{shown.url_part(name)}"
    kind = picture(blob)
    if kind is not None:
        return kind, {"Content-Disposition": f"inline; {named}", "Content-Security-Policy": PICTURE_CSP,
                      "X-Content-Type-Options": "nosniff"}
    return "application/octet-stream", {"Content-Disposition": f"attachment; {named}",
                                        "Content-Security-Policy": RAW_CSP, "X-Content-Type-Options": "nosniff"}

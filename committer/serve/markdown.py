"""Markdown notes rendered for the history pages: markdown-it-py's one home.

CommonMark (with tables and strikethrough) with raw HTML off: a `<script>` or `<img onerror>` in a note
is shown as the text it is. Every link and picture is rewritten once parsed: http, https and mailto links
stay; a relative link or picture is resolved within the same revision (a link to `/view/<rev>/...`, a
picture from `/raw/<rev>/...`, the only pictures the pages' CSP lets a browser load); a picture from
elsewhere becomes a link to it; anything else (`javascript:`, `data:`, `vbscript:`, `file:`, a
scheme-relative `//host`) loses its address and is inert text.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

from committer.serve.shown import url_part, url_path

EXTENSIONS = (".md", ".markdown")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
LINKED = ("http", "https", "mailto")
# markdown-it-py's time grows faster than the text on some input (thousands of unclosed `![`, tables of
# many rows: a 100 kB note of `![` took 10 s): a longer note, or one with more brackets, is shown as text.
NOTE_MAX = 50_000  # characters
BRACKETS_MAX = 5_000


def is_markdown(path: str) -> bool:
    """Whether the pages render this file as a note (by its name: .md or .markdown)."""
    return path.lower().endswith(EXTENSIONS)


def renderable(text: str) -> bool:
    """Whether a note is small enough to render within a page's time (NOTE_MAX, BRACKETS_MAX)."""
    return len(text) <= NOTE_MAX and text.count("[") <= BRACKETS_MAX


def render(text: str, rev: str, path: str) -> str:
    """The note's HTML (safe to put in a page as it is): `path` at revision `rev`, whose relative links
    and pictures point into that revision."""
    return str(_MD.render(text, {"rev": rev, "path": path}))


def _rewrite(state: StateCore) -> None:
    rev, path = str(state.env["rev"]), str(state.env["path"])
    for token in state.tokens:
        if token.children:
            token.children = [out for child in token.children for out in _safe(child, rev, path)]


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.core.ruler.push("committer_links", _rewrite)
    return md


def _safe(token: Token, rev: str, path: str) -> list[Token]:
    if token.type == "link_open":
        href = target(str(token.attrGet("href") or ""), rev, path, "view")
        token.attrs.pop("href", None)
        if href is not None:
            token.attrSet("href", href)
        else:
            token.attrSet("class", "inert")
        return [token]
    if token.type == "image":
        src = str(token.attrGet("src") or "")
        local = target(src, rev, path, "raw") if not _SCHEME.match(src) and not src.startswith("//") else None
        if local is not None:
            token.attrSet("src", local)
            token.attrSet("loading", "lazy")
            return [token]
        # a picture from elsewhere (the pages load none) or an unsafe one: its description, linked if safe
        alt = Token("text", "", 0, content=token.content or src)
        href = target(src, rev, path, "view")
        if href is None:
            return [alt]
        return [Token("link_open", "a", 1, attrs={"href": href}), alt, Token("link_close", "a", -1)]
    return [token]


def target(address: str, rev: str, path: str, kind: str) -> str | None:
    """Where a link or picture in the note at `path` may point: the address itself for http, https and
    mailto; a page of the same revision for a relative one; None when it must not be followed."""
    address = address.strip()
    if not address or address.startswith("//"):
        return None
    scheme = _SCHEME.match(address)
    if scheme:
        return address if scheme.group(0)[:-1].lower() in LINKED else None
    if address.startswith("#"):
        return "#" + url_part(unquote(address[1:]))
    parts = urlsplit(address)
    where = unquote(parts.path)
    if not where:  # `?x=1` alone: the note itself
        joined = path
    else:
        joined = where.lstrip("/") if where.startswith("/") else posixpath.join(posixpath.dirname(path), where)
    resolved = posixpath.normpath(joined or ".")
    if resolved.startswith("../") or resolved == "..":
        return None  # above the top of the data folder: nothing there
    if resolved == ".":  # `/`, `../` from a folder's note: the top of the data folder, no picture
        return "/files" if kind == "view" else None
    fragment = f"#{url_part(unquote(parts.fragment))}" if parts.fragment else ""
    if kind == "view" and where.endswith("/"):
        return f"/file/{url_path(resolved)}"  # a folder: its history
    return f"/{kind}/{url_part(rev)}/{url_path(resolved)}{fragment}"


_MD = _parser()

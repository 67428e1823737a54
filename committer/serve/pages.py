"""The history pages: the timeline, one file's history, one commit, a file at a revision, and restore.

Server-rendered Jinja2 templates with autoescaping on: every file name, message and file content is
escaped, and a file is never served as HTML (downloads are `application/octet-stream` attachments; only
pictures known by their content are served inline, as their own type).
The daemon hands in what the pages need (a read-only view of the repository, a status snapshot, and a
way to ask its main loop for something); this module never imports the daemon. The routes are in
serve/site.py.
"""

from __future__ import annotations

import functools
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment as Environment
from jinja2 import PackageLoader as PackageLoader
from jinja2 import select_autoescape as select_autoescape

from committer import __version__
from committer.core import logs
from committer.git.repo import GitRepo
from committer.ops import asking
from committer.serve import diffs, filehistory, history, markdown, seen, shown, wording
from committer.serve.access import OFF, OPEN, Access, Tries
from committer.serve.web import FileResponse, HTMLResponse, RedirectResponse, Request, Response, json_response
from committer.serve.work import Job, PagePool

log = logs.get("committer.pages")



@dataclass(frozen=True)
class Pages:
    """What the daemon hands the pages."""

    repo: GitRepo  # read-only use: git log, diff-tree, cat-file, ls-tree
    access: Access
    status: Callable[[], Mapping[str, Any]]  # the daemon's state: push, holds, last error
    # a request for the main loop (a restore) -> its answer; a failure is a CommitterError
    request: Callable[[asking.Request], asking.Answer]
    clock: Callable[[], float] = time.time
    project: str = ""  # per-project layout: the project these pages show
    projects: Callable[[], list[str]] | None = None  # per-project layout: every project, for the picker

    @functools.cached_property
    def pool(self) -> PagePool:
        """The pages' own workers (never the threads /healthz, /metrics and the webhook use)."""
        return PagePool(self.repo.runner)

    @functools.cached_property
    def logins(self) -> Tries:
        """Login attempts per client."""
        return Tries()


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("committer.serve", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        # Every shown value: a name's bytes that are not UTF-8 appear as \xNN (then escaped as HTML).
        finalize=lambda value: shown.readable(value) if isinstance(value, str) else value,
    )
    env.filters["urlpath"] = shown.url_path
    env.filters["q"] = shown.url_part
    env.filters["size"] = wording.human_size
    env.filters["short"] = lambda sha: str(sha)[:10]
    env.filters["absolute"] = wording.absolute
    env.globals["version"] = __version__
    return env


ENV = _env()
Handler = Callable[[Pages, Request], Awaitable[Response]]


def gate(pages: Pages, request: Request) -> Response | None:
    """None when the request may go on; else the answer that refuses it."""
    access = pages.access
    if access.mode == OFF:
        return json_response(404, {"error": "the history pages are off on this address: no ui token is configured"})
    if not access.host_ok(request.headers):
        return HTMLResponse("<!doctype html><title>Wrong address</title><p>Open the pages at "
                            "http://127.0.0.1 (or localhost), the address committer listens on.</p>", 403)
    if request.method == "POST" and not access.same_origin(request.headers):
        log.warning("page_refused", path=request.url.path, reason="cross-site request",
                    origin=request.headers.get("origin"))
        return HTMLResponse("<!doctype html><title>Refused</title><p>Refused: this request came from another site.</p>",
                            403)
    if access.authorized(request.headers, request.cookies):
        return None
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", 303)
    return HTMLResponse("<!doctype html><title>Log in</title><p>Log in first.</p>", 401)


def page(pages: Pages, request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A template rendered with what every page shows (the push banner, the CSRF token, the login state)."""
    full = {
        "csrf": pages.access.csrf,
        "logged_in": pages.access.mode not in (OPEN, OFF),
        "banner": shown.banner(pages.status(), pages.clock()),
        "now": pages.clock(),
        "relative": wording.relative,
        "request_path": shown.readable(request.url.path),
        "project": pages.project,
        "projects": pages.projects() if pages.projects is not None else [],
        **context,
    }
    html = ENV.get_template(name).render(full)
    return HTMLResponse(html, status)


def query(request: Request) -> dict[str, str]:
    """The query's fields, names decoded byte-exact (a name that is not UTF-8 keeps its bytes)."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    fields = parse_qs(raw, keep_blank_values=True, encoding="utf-8", errors="surrogateescape")
    return {k: v[0] for k, v in fields.items()}


def path_tail(request: Request, prefix: str, name: str = "path") -> str:
    """The part of the raw URL path after `prefix`, decoded byte-exact (Starlette's decoded path replaces
    bytes that are not UTF-8, which would name another file)."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(prefix.encode()):
        return shown.from_url(raw[len(prefix) :].decode("latin-1"))
    return str(request.path_params.get(name, ""))


def _int(value: str | None, default: int = 0, most: int = 10_000_000) -> int:
    try:
        return max(0, min(most, int(value or default)))
    except ValueError:
        return default


# -- the pages --------------------------------------------------------------------------------------
# Each page's git work and rendering run in the pages' own pool (pages.pool): bounded, with a deadline,
# stopped when the client goes away. Only what is cheap runs on the event loop.


async def timeline(pages: Pages, request: Request) -> Response:
    params = query(request)
    path = history.check_path(params.get("path", "").strip())
    until = params.get("until", "").strip()
    skip = _int(params.get("skip"))

    def build(job: Job) -> Response:
        commits, more = history.timeline(pages.repo, skip, path, until)
        job.check()
        now = pages.clock()
        days = [(label, list(group)) for label, group in
                groupby(commits, key=lambda c: wording.day_label(c.when, now))]

        def link(**changes: Any) -> str:
            fields = {"path": path, "until": until, "skip": skip, **changes}
            return "/?" + "&".join(f"{k}={shown.url_part(v)}" for k, v in fields.items() if v)

        return page(pages, request, "timeline.html", {
            "title": "History", "days": days, "path": path, "until": until, "skip": skip, "now": now,
            "older": link(skip=skip + history.PAGE) if more else None,
            "newer": link(skip=max(0, skip - history.PAGE)) if skip else None,
            "relative": wording.relative, "date_note": date_note(pages, until, bool(commits), skip),
        })

    return await pages.pool.run(request.receive, build, "timeline")


def date_note(pages: Pages, until: str, found: bool, skip: int) -> str | None:
    """One line when the date jump lands outside the history: before its start, or after its end."""
    if not until or skip:
        return None
    span = history.span(pages.repo)
    if span is None:
        return None
    day = history.check_date(until, pages.repo)
    first, last = (wording.absolute(t)[:10] for t in span)
    if not found and (day.isoformat() < first or history.until_span(pages.repo, until).last < span[0]):
        return f"Nothing was saved on or before {until}: the history starts on {wording.absolute(span[0])}."
    if day.isoformat() > last:
        return f"{until} is after the newest change ({last}): everything is shown, newest first."
    return None


async def file_page(pages: Pages, request: Request, known_folder: bool | None = None) -> Response:
    path = history.check_path(path_tail(request, "/file/"))
    if not path:
        return RedirectResponse("/", 303)
    skip = _int(query(request).get("skip"))

    def build(job: Job) -> Response:
        commits: list[history.Commit] = []
        revisions: list[history.Revision] = []
        more = False
        folder = history.is_folder(pages.repo, path) if known_folder is None else known_folder
        if folder:
            commits, more = history.timeline(pages.repo, skip, path, "", history.PAGE)
        else:
            revisions, more = filehistory.file_history(pages.repo, path, skip)
        job.check()
        base = f"/file/{shown.url_path(path)}"
        step = history.PAGE if folder else history.FILE_PAGE
        return page(pages, request, "file.html", {
            "title": path, "path": path, "folder": folder, "revisions": revisions, "commits": commits,
            "older": f"{base}?skip={skip + step}" if more else None,
            "newer": f"{base}?skip={max(0, skip - step)}" if skip else None,
            "now": pages.clock(), "relative": wording.relative, "skip": skip,
        })

    return await pages.pool.run(request.receive, build, "file")


def _rev_and_path(request: Request, prefix: str) -> tuple[str, str]:
    rest = path_tail(request, prefix, "")
    if not rest:
        return str(request.path_params["rev"]), history.check_path(str(request.path_params["path"]))
    rev, _, path = rest.partition("/")
    return rev, history.check_path(path)


async def view_page(pages: Pages, request: Request) -> Response:
    rev, path = _rev_and_path(request, "/view/")
    source = query(request).get("source") == "1"

    def build(job: Job) -> Response:
        blob = history.blob_at(pages.repo, rev, path)
        when = wording.commit_time(pages.repo, blob.rev)
        what = seen.shown_as(blob, source)
        job.check()
        return page(pages, request, "view.html", {"title": f"{path} at {blob.rev[:10]}", "blob": blob,
                                                    "text": what.text, "note": what.note,
                                                    "picture": what.picture, "source": source,
                                                    "long_note": what.long_note, "link": what.link,
                                                    "markdown": markdown.is_markdown(path) and not what.link,
                                                    "when": when})

    return await pages.pool.run(request.receive, build, "view")


async def raw_file(pages: Pages, request: Request) -> Response:
    """The file as it was: a picture (known by its content) inline as its own type, anything else a
    download that the browser never renders, whatever its name says (serve/seen.py)."""
    rev, path = _rev_and_path(request, "/raw/")
    blob = await pages.pool.run(request.receive, lambda job: history.blob_at(pages.repo, rev, path, True), "raw")
    if blob.lfs_missing:
        raise history.NotFound(f"{shown.readable(path)} at {blob.rev[:10]} is a large file kept in LFS and its "
                               "content is not in this repository's LFS store")
    if not blob.lfs and blob.size > history.RAW_MAX:  # never whole in memory: the CLI writes it to a file
        return page(pages, request, "error.html", {"title": "Too large to download here", "message": (
            f"{shown.readable(path)} at {blob.rev[:10]} is {blob.size:,} bytes, kept in git itself (not in LFS): "
            f"too large to send from the pages. `committer show {shlex.quote(shown.readable(path))} "
            f"--at {blob.rev[:12]} -o FILE` writes it to a file.")}, 413)
    media, headers = seen.download(blob, path)
    if blob.lfs_object is not None:  # streamed from the LFS store, never whole in memory
        return FileResponse(blob.lfs_object, headers=headers, media_type=media)
    return Response(blob.content, 200, headers=headers, media_type=media)


async def commit_page(pages: Pages, request: Request) -> Response:
    rev = str(request.path_params["rev"])
    params = query(request)
    split = params.get("view") == "split"

    def build(job: Job) -> Response:
        found = history.commit(pages.repo, rev)
        file_diffs = diffs.diffs(pages.repo, found, job.check)
        job.check()
        return page(pages, request, "commit.html", {
            "title": found.subject, "commit": found, "diffs": file_diffs,
            "not_shown": len(found.changes or []) - len(file_diffs), "split": split, "now": pages.clock(),
            "relative": wording.relative, "restored": params.get("restored"),
            "meta_rows": shown.meta_rows(found.meta),
        })

    return await pages.pool.run(request.receive, build, "commit")


meta_rows = shown.meta_rows

"""The history pages: the timeline, one file's history, one commit, a file at a revision, and restore.

Server-rendered Jinja2 templates with autoescaping on: every file name, message and file content is
escaped, and a file is never served as HTML (downloads are `application/octet-stream` attachments).
The daemon hands in what the pages need (a read-only view of the repository, a status snapshot, and a
way to put a request in its mailbox); this module never imports the daemon.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from committer import __version__
from committer.core import logs
from committer.core.errors import CommitterError
from committer.git.repo import GitRepo
from committer.serve import diffs, history, wording
from committer.serve.access import COOKIE, OFF, OPEN, Access
from committer.serve.app import json_response, read_body

log = logs.get("committer.pages")

FORM_MAX = 16 * 1024  # bytes of a form post
FORM_SECONDS = 10.0  # the longest a form's body may take to arrive
COOKIE_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Pages:
    """What the daemon hands the pages."""

    repo: GitRepo  # read-only use: git log, diff-tree, cat-file, ls-tree
    access: Access
    status: Callable[[], Mapping[str, Any]]  # the daemon's state: push, holds, last error
    request: Callable[[str, dict[str, Any]], dict[str, Any]]  # (op, args) -> answer, through the mailbox
    clock: Callable[[], float] = time.time


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("committer.serve", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["urlpath"] = lambda value: quote(str(value), safe="/")
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["size"] = wording.human_size
    env.filters["short"] = lambda sha: str(sha)[:10]
    env.filters["absolute"] = wording.absolute
    env.globals["version"] = __version__
    return env


ENV = _env()
Handler = Callable[[Pages, Request], Awaitable[Response]]


def routes(pages: Pages) -> list[BaseRoute]:
    """The page routes, each behind the access rule."""

    def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            refused = gate(pages, request)
            if refused is not None:
                return refused
            try:
                return await handler(pages, request)
            except history.NotFound as exc:
                return page(pages, request, "error.html", {"title": "Not found", "message": exc.message}, 404)
            except CommitterError as exc:
                log.warning("page_failed", path=request.url.path, error=exc.message)
                return page(pages, request, "error.html", {"title": "That did not work", "message": exc.message}, 500)

        return endpoint

    return [
        Route("/", guarded(timeline), methods=["GET", "HEAD"]),
        Route("/file/{path:path}", guarded(file_page), methods=["GET", "HEAD"]),
        Route("/view/{rev}/{path:path}", guarded(view_page), methods=["GET", "HEAD"]),
        Route("/raw/{rev}/{path:path}", guarded(raw_file), methods=["GET", "HEAD"]),
        Route("/commit/{rev}", guarded(commit_page), methods=["GET", "HEAD"]),
        Route("/restore", guarded(restore_page), methods=["GET", "HEAD", "POST"]),
        Route("/login", functools.partial(login, pages), methods=["GET", "HEAD", "POST"]),
        Route("/logout", guarded(logout), methods=["POST"]),
    ]


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
        "banner": banner(pages.status(), pages.clock()),
        "now": pages.clock(),
        "relative": wording.relative,
        "request_path": request.url.path,
        **context,
    }
    html = ENV.get_template(name).render(full)
    return HTMLResponse(html, status)


def banner(state: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The push state in words for the banner at the top of every page."""
    push = state.get("push") or {}
    error = state.get("last_error") or push.get("last_error")
    held = state.get("held")
    held_files = state.get("held_files") or []
    level = "ok"
    if error or held or state.get("data_dir_missing"):
        level = "bad"
    elif held_files or (push.get("pending_commits") or 0) > 0:
        level = "warn"
    return {
        "level": level,
        "remote": push.get("remote"),
        "pending": push.get("pending_commits"),
        "last_push_at": push.get("last_push_at"),
        "last_push_ago": wording.relative(at, now) if (at := wording.parse_iso(push.get("last_push_at"))) else None,
        "error": error,
        "held": held,
        "held_files": held_files,
        "data_dir_missing": bool(state.get("data_dir_missing")),
    }


def _int(value: str | None, default: int = 0, most: int = 10_000_000) -> int:
    try:
        return max(0, min(most, int(value or default)))
    except ValueError:
        return default


# -- the pages --------------------------------------------------------------------------------------


async def timeline(pages: Pages, request: Request) -> Response:
    params = request.query_params
    path = history.check_path(params.get("path", "").strip())
    until = params.get("until", "").strip()
    skip = _int(params.get("skip"))
    commits, more = await run_in_threadpool(history.timeline, pages.repo, skip, path, until)
    now = pages.clock()
    days = [(label, list(group)) for label, group in
            groupby(commits, key=lambda c: wording.day_label(c.when, now))]

    def link(**changes: Any) -> str:
        query = {"path": path, "until": until, "skip": skip, **changes}
        return "/?" + urlencode({k: v for k, v in query.items() if v})

    return page(pages, request, "timeline.html", {
        "title": "History", "days": days, "path": path, "until": until, "skip": skip, "now": now,
        "older": link(skip=skip + history.PAGE) if more else None,
        "newer": link(skip=max(0, skip - history.PAGE)) if skip else None,
        "relative": wording.relative,
    })


async def file_page(pages: Pages, request: Request) -> Response:
    path = history.check_path(request.path_params["path"])
    if not path:
        return RedirectResponse("/", 303)
    skip = _int(request.query_params.get("skip"))

    def read() -> tuple[bool, list[history.Revision], bool, list[history.Commit], bool]:
        if history.is_folder(pages.repo, path):
            commits, more = history.timeline(pages.repo, skip, path, "", history.PAGE)
            return True, [], False, commits, more
        revisions, more = history.file_history(pages.repo, path, skip)
        return False, revisions, more, [], False

    folder, revisions, more, commits, more_commits = await run_in_threadpool(read)
    base = f"/file/{quote(path)}"
    older = more or more_commits
    return page(pages, request, "file.html", {
        "title": path, "path": path, "folder": folder, "revisions": revisions, "commits": commits,
        "older": f"{base}?skip={skip + (history.PAGE if folder else history.FILE_PAGE)}" if older else None,
        "newer": f"{base}?skip={max(0, skip - (history.PAGE if folder else history.FILE_PAGE))}" if skip else None,
        "now": pages.clock(), "relative": wording.relative, "skip": skip,
    })


async def view_page(pages: Pages, request: Request) -> Response:
    path = history.check_path(request.path_params["path"])
    blob = await run_in_threadpool(history.blob_at, pages.repo, request.path_params["rev"], path)
    when = await run_in_threadpool(wording.commit_time, pages.repo, blob.rev)
    text = None
    if not blob.binary and not blob.too_big:
        text = blob.content.decode("utf-8", "replace")
    return page(pages, request, "view.html", {"title": f"{path} at {blob.rev[:10]}", "blob": blob, "text": text,
                                                "when": when})


async def raw_file(pages: Pages, request: Request) -> Response:
    """The file as it was, as a download: never rendered by the browser, whatever its name says."""
    path = history.check_path(request.path_params["path"])
    blob = await run_in_threadpool(history.blob_at, pages.repo, request.path_params["rev"], path, True)
    if blob.lfs_missing:
        raise history.NotFound(f"{path} at {blob.rev[:10]} is a large file kept in LFS and its content is not "
                               "in this repository's LFS store")
    name = path.rsplit("/", 1)[-1] or "file"
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in name)
    headers = {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if blob.lfs_object is not None:  # streamed from the LFS store, never whole in memory
        return FileResponse(blob.lfs_object, headers=headers, media_type="application/octet-stream")
    return Response(blob.content, 200, headers=headers, media_type="application/octet-stream")


async def commit_page(pages: Pages, request: Request) -> Response:
    rev = request.path_params["rev"]
    split = request.query_params.get("view") == "split"

    def read() -> tuple[history.Commit, list[diffs.FileDiff]]:
        found = history.commit(pages.repo, rev)
        return found, diffs.diffs(pages.repo, found)

    found, file_diffs = await run_in_threadpool(read)
    return page(pages, request, "commit.html", {
        "title": found.subject, "commit": found, "diffs": file_diffs,
        "not_shown": len(found.changes or []) - len(file_diffs), "split": split, "now": pages.clock(),
        "relative": wording.relative, "restored": request.query_params.get("restored"),
        "meta_rows": meta_rows(found.meta),
    })


def meta_rows(meta: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The BM-Meta trailer as (label, value) rows a person can read."""
    if not meta:
        return []
    labels = {
        "op": "Operation", "host": "Host", "first_event": "First change seen", "batch": "Batch",
        "added": "Added", "modified": "Modified", "deleted": "Deleted", "renamed": "Renamed",
        "source": "Restored from commit", "rev": "Restored from", "path": "Restored path", "remote": "Remote commit",
        "head": "Head", "v": "Trailer version",
    }
    rows = []
    for key, value in meta.items():
        if key == "bmmeta":
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            rows.append(("Written by (.bmmeta)", value))
        else:
            rows.append((labels.get(key, key), str(value)))
    return rows


async def restore_page(pages: Pages, request: Request) -> Response:
    """GET: what a restore would change (a dry run through the daemon), and the button. POST: do it."""
    if request.method == "POST":
        return await _restore(pages, request)
    path = history.check_path(request.query_params.get("path", ""))
    rev = request.query_params.get("rev", "")
    sha = await run_in_threadpool(history.check_rev, pages.repo, rev)
    answer = await run_in_threadpool(pages.request, "restore", {"path": path, "rev": sha, "dry_run": True})
    when = await run_in_threadpool(wording.commit_time, pages.repo, sha)
    return page(pages, request, "restore.html", {
        "title": f"Restore {path or 'everything'}", "path": path, "rev": sha, "answer": answer, "when": when,
        "actions": answer.get("actions") or [],
    })


async def _restore(pages: Pages, request: Request) -> Response:
    form = await read_form(request)
    if form is None:
        return HTMLResponse("<!doctype html><title>Refused</title><p>The form did not arrive whole.</p>", 400)
    if not pages.access.csrf_ok(form.get("csrf", "")):
        log.warning("page_refused", path="/restore", reason="missing or wrong CSRF token")
        return HTMLResponse("<!doctype html><title>Refused</title><p>Refused: reload the page and try again.</p>",
                            403)
    path = history.check_path(form.get("path", ""))
    sha = await run_in_threadpool(history.check_rev, pages.repo, form.get("rev", ""))
    log.info("page_restore", path=path or ".", rev=sha)
    answer = await run_in_threadpool(pages.request, "restore", {"path": path, "rev": sha})
    if answer.get("sha"):
        return RedirectResponse(f"/commit/{answer['sha']}?{urlencode({'restored': path or '.'})}", 303)
    return page(pages, request, "restore.html", {
        "title": f"Restore {path or 'everything'}", "path": path, "rev": sha, "answer": answer, "actions": [],
        "nothing": True, "when": await run_in_threadpool(wording.commit_time, pages.repo, sha),
    })


async def read_form(request: Request) -> dict[str, str] | None:
    """An application/x-www-form-urlencoded body of at most FORM_MAX bytes, in FORM_SECONDS at most; None
    when it is larger or slower. Any other kind of body has no fields (so no CSRF token: a 403)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return {}
    body = await read_body(request, FORM_MAX, FORM_SECONDS)
    if body is None:
        return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in fields.items()}


async def login(pages: Pages, request: Request) -> Response:
    access = pages.access
    if access.mode != "token":
        return json_response(404, {"error": "not found"})
    target = request.query_params.get("next", "/")
    if request.method == "POST":
        if not access.same_origin(request.headers):
            return HTMLResponse("<!doctype html><title>Refused</title><p>Refused: another site sent this.</p>", 403)
        form = await read_form(request) or {}
        target = form.get("next", "/")
        if not access.csrf_ok(form.get("csrf", ""), login=True):
            return HTMLResponse("<!doctype html><title>Refused</title><p>Refused: reload the page.</p>", 403)
        token = access.token()
        given = form.get("token", "").strip()
        if token is not None and given and access.authorized({"authorization": f"Bearer {given}"}, {}):
            response = RedirectResponse(_local(target), 303)
            response.set_cookie(COOKIE, access.cookie_value(token), max_age=COOKIE_SECONDS, path="/",
                                httponly=True, samesite="strict", secure=request.url.scheme == "https")
            log.info("page_login", client=request.client.host if request.client else None)
            return response
        log.warning("page_login_refused", client=request.client.host if request.client else None)
        return _login_form(access, target, "That token is not right.", 401)
    return _login_form(access, target, None, 200)


def _login_form(access: Access, target: str, error: str | None, status: int) -> HTMLResponse:
    html = ENV.get_template("login.html").render(
        title="Log in", csrf=access.login_csrf, next=_local(target), error=error, banner=None, logged_in=False)
    return HTMLResponse(html, status)


def _local(target: str) -> str:
    """Only a path on this server: never another site (//evil, /\\evil, https://...)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or any(ord(c) < 0x20 for c in target):
        return "/"
    return target


async def logout(pages: Pages, request: Request) -> Response:
    form = await read_form(request) or {}
    if not pages.access.csrf_ok(form.get("csrf", "")):
        return HTMLResponse("<!doctype html><title>Refused</title><p>Refused: reload the page.</p>", 403)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response

"""The history pages' routes: each page behind the access rule, and the answer when a page fails (too slow,
not found, refused by git)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from committer.core.errors import CommitterError
from committer.serve import finding, history, shown
from committer.serve.forms import confirm_deletes, login, logout, put_back, restore_page, secret_page
from committer.serve.pages import (
    ENV,
    Handler,
    Pages,
    commit_page,
    gate,
    log,
    page,
    raw_file,
    view_page,
)
from committer.serve.syncroute import sync_route
from committer.serve.web import BaseRoute, HTMLResponse, RedirectResponse, Request, Response, Route
from committer.serve.work import Stopped

PROJECT_COOKIE = "committer_project"  # per-project layout: the project the pages show


def routes(pages: Pages, pick: Callable[[str], Pages | None] | None = None) -> list[BaseRoute]:
    """The page routes, each behind the access rule; with `pick` (per-project layout), each request is
    served by the pages of the project its cookie names (`pages`, the first project's, without one)."""
    def chosen(request: Request) -> Pages:
        if pick is None:
            return pages
        return pick(request.cookies.get(PROJECT_COOKIE, "")) or pages

    def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            mine = chosen(request)
            refused = gate(mine, request)
            if refused is not None:
                return refused
            try:
                return await handler(mine, request)
            except Stopped as exc:
                if exc.client_gone:
                    return Response(b"", 499)  # nobody reads it
                # Rendered without the banner: nothing that could be slow runs on the event loop.
                html = ENV.get_template("error.html").render(
                    title="This page took too long", banner=None, logged_in=False, message=(
                        "It was stopped so that it cannot slow down the backups. Try again in a moment, or "
                        "a smaller view (one file, one folder)."))
                return HTMLResponse(html, 503, headers={"Retry-After": "10"})
            except history.NotFound as exc:
                return page(mine, request, "error.html", {"title": "Not found", "message": exc.message}, 404)
            except CommitterError as exc:
                log.warning("page_failed", path=request.url.path, error=shown.readable(exc.message))
                return page(mine, request, "error.html", {"title": "That did not work", "message": exc.message}, 500)

        return endpoint

    async def choose(pages: Pages, request: Request) -> Response:
        """The project picker's answer: that project's timeline, remembered in a cookie."""
        name = request.query_params.get("name", "")
        if pick is None or pages.projects is None or name not in pages.projects():
            return page(pages, request, "error.html", {"title": "Not found", "message": "no such project"}, 404)
        response = RedirectResponse("/", 303)
        response.set_cookie(PROJECT_COOKIE, name, path="/", httponly=True, samesite="strict")
        return response

    return [
        Route("/project", guarded(choose), methods=["GET", "HEAD"]),
        Route("/", guarded(finding.timeline_or_suggest), methods=["GET", "HEAD"]),
        Route("/file/{path:path}", guarded(finding.file_or_suggest), methods=["GET", "HEAD"]),
        Route("/search", guarded(finding.search_page), methods=["GET", "HEAD"]),
        Route("/search/names", guarded(finding.typed_names), methods=["GET", "HEAD"]),
        Route("/files", guarded(finding.files_page), methods=["GET", "HEAD"]),
        Route("/view/{rev}/{path:path}", guarded(view_page), methods=["GET", "HEAD"]),
        Route("/raw/{rev}/{path:path}", guarded(raw_file), methods=["GET", "HEAD"]),
        Route("/commit/{rev}", guarded(commit_page), methods=["GET", "HEAD"]),
        Route("/restore", guarded(restore_page), methods=["GET", "HEAD", "POST"]),
        Route("/holds/confirm", guarded(confirm_deletes), methods=["POST"]),
        Route("/holds/put-back", guarded(put_back), methods=["POST"]),
        Route("/secret", guarded(secret_page), methods=["GET", "HEAD", "POST"]),
        Route("/sync", guarded(sync_route), methods=["POST"]),
        Route("/login", functools.partial(login, pages), methods=["GET", "HEAD", "POST"]),
        Route("/logout", guarded(logout), methods=["POST"]),
    ]

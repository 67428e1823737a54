"""The pages that take a form or cost a dry run: restore (its preview and the restore itself), login and
logout. Every POST carries the CSRF token; a preview answers same-origin requests only; logins are
limited per client."""

from __future__ import annotations

from urllib.parse import parse_qs

from committer.ops.kinds import Restore
from committer.serve import history, shown, wording
from committer.serve.access import COOKIE, Access
from committer.serve.pages import ENV, Pages, log, page, query
from committer.serve.web import (
    HTMLResponse,
    RedirectResponse,
    Request,
    Response,
    json_response,
    read_body,
    run_in_threadpool,
)

FORM_MAX = 16 * 1024  # bytes of a form post
FORM_SECONDS = 10.0  # the longest a form's body may take to arrive
COOKIE_SECONDS = 7 * 86400


async def restore_page(pages: Pages, request: Request) -> Response:
    """GET: what a restore would change (a dry run through the daemon), and the button. POST: do it."""
    if request.method == "POST":
        return await _restore(pages, request)
    params = query(request)
    path = history.check_path(params.get("path", ""))
    rev = params.get("rev", "")
    if not pages.access.same_origin_get(request.headers):
        # A preview costs a dry run: only for these pages, never for an <img src> on another site.
        log.warning("page_refused", path="/restore", reason="restore preview not asked from these pages",
                    site=request.headers.get("sec-fetch-site"))
        link = f"/restore?path={shown.url_part(path)}&amp;rev={shown.url_part(rev)}"
        return HTMLResponse("<!doctype html><title>Restore</title><p>This restore preview opens only from the "
                            f"history pages. <a href=\"{link}\">Show what this restore would change</a></p>", 403)
    sha = await pages.pool.run(request.receive, lambda job: history.check_rev(pages.repo, rev), "restore")
    answer = (await run_in_threadpool(pages.request, Restore(path, sha, dry_run=True))).payload
    when = await pages.pool.run(request.receive, lambda job: wording.commit_time(pages.repo, sha), "restore")
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
    path = history.check_path(shown.from_url(form.get("path", "")))  # the form sends the name's bytes encoded
    sha = await pages.pool.run(None, lambda job: history.check_rev(pages.repo, form.get("rev", "")), "restore")
    log.info("page_restore", path=shown.readable(path) or ".", rev=sha)
    answer = (await run_in_threadpool(pages.request, Restore(path, sha))).payload
    if answer.get("sha"):
        return RedirectResponse(f"/commit/{answer['sha']}?restored={shown.url_part(path or '.')}", 303)
    when = await pages.pool.run(None, lambda job: wording.commit_time(pages.repo, sha), "restore")
    return page(pages, request, "restore.html", {
        "title": f"Restore {path or 'everything'}", "path": path, "rev": sha, "answer": answer, "actions": [],
        "nothing": True, "when": when,
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
        client = request.client.host if request.client else "-"
        wait = pages.logins.wait(client)
        if wait:
            log.warning("page_login_refused", client=client, reason="too many tries", retry_after=round(wait))
            return HTMLResponse("<!doctype html><title>Too many tries</title><p>Too many tries: wait a minute, then "
                                "try again.</p>", 429, headers={"Retry-After": str(int(wait + 0.999))})
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

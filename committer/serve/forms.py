"""The pages that take a form or cost a dry run: restore (its preview and the restore itself), the holds
(confirm or put back held deletions, say a held file is not a secret), login and logout. Every POST carries
the CSRF token; a preview answers same-origin requests only; logins are limited per client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from committer.core.errors import CommitterError
from committer.ops.kinds import AllowSecret, ConfirmDeletes, PutBack, Restore
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
SETTLE_SECONDS = 2.0  # the longest a hold's answer waits for the daemon's state to show it
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
    as_pr = form.get("as_pr") == "1"  # the second button: proposed as a pull request, the data folder unchanged
    log.info("page_restore", path=shown.readable(path) or ".", rev=sha, as_pr=as_pr)
    try:
        answer = (await run_in_threadpool(pages.request, Restore(path, sha, as_pr=as_pr))).payload
    except CommitterError as exc:
        if not as_pr:
            raise
        return _held(pages, request, "The pull request was not made", exc.message, 502)
    when = await pages.pool.run(None, lambda job: wording.commit_time(pages.repo, sha), "restore")
    if as_pr and answer.get("sha"):
        return page(pages, request, "restore.html", {
            "title": f"Restore {path or 'everything'} proposed", "path": path, "rev": sha, "answer": answer,
            "actions": [], "proposed": answer, "when": when,
        })
    if answer.get("sha"):
        return RedirectResponse(f"/commit/{answer['sha']}?restored={shown.url_part(path or '.')}", 303)
    return page(pages, request, "restore.html", {
        "title": f"Restore {path or 'everything'}", "path": path, "rev": sha, "answer": answer, "actions": [],
        "nothing": True, "when": when,
    })


REFUSED = "<!doctype html><title>Refused</title><p>Refused: reload the page and try again.</p>"


async def _checked_form(pages: Pages, request: Request, what: str) -> dict[str, str] | Response:
    """The form of a POST that changes something, or the answer that refuses it (nothing changes)."""
    form = await read_form(request)
    if form is None:
        return HTMLResponse("<!doctype html><title>Refused</title><p>The form did not arrive whole.</p>", 400)
    if not pages.access.csrf_ok(form.get("csrf", "")):
        log.warning("page_refused", path=what, reason="missing or wrong CSRF token")
        return HTMLResponse(REFUSED, 403)
    shown_as = "sha" if what == "/secret" else "seen"
    if not form.get(shown_as):
        # What the page showed (the hold's key, the reviewed content's id): without it, whatever is held or
        # in the file now, never seen, would be dealt with.
        log.warning("page_refused", path=what, reason=f"the form does not say what it was shown ({shown_as})")
        return HTMLResponse(REFUSED, 400)
    return form


async def confirm_deletes(pages: Pages, request: Request) -> Response:
    """POST: commit the held deletions the page showed (`committer confirm-deletes`)."""
    answer = await _deal_with_hold(pages, request, "/holds/confirm", ConfirmDeletes)
    if isinstance(answer, Response):
        return answer
    if answer.get("sha"):
        return RedirectResponse(f"/commit/{answer['sha']}", 303)
    return _held(pages, request, "Nothing to confirm", "No deletions are on hold (any more).", 200)


async def put_back(pages: Pages, request: Request) -> Response:
    """POST: write the held deletions back from the last commit (`committer put-back`)."""
    answer = await _deal_with_hold(pages, request, "/holds/put-back", PutBack)
    if isinstance(answer, Response):
        return answer
    return page(pages, request, "held.html", {"title": "Put back", "put": answer})


async def _deal_with_hold(pages: Pages, request: Request, path: str,
                          kind: type[ConfirmDeletes] | type[PutBack]) -> Response | Mapping[str, Any]:
    """A hold button's POST checked, its request run by the daemon on the hold the page showed, and the
    daemon's state settled: the answer's payload, or the page that says why nothing was done."""
    form = await _checked_form(pages, request, path)
    if isinstance(form, Response):
        return form
    log.info("page_confirm_deletes" if kind is ConfirmDeletes else "page_put_back")
    seen = form.get("seen", "")
    try:
        answer = (await run_in_threadpool(pages.request, kind(seen=seen))).payload
    except CommitterError as exc:
        return _held(pages, request, "Nothing was done", exc.message, 409)
    await _settled(pages, _hold_gone(seen))
    return answer


async def _settled(pages: Pages, done: Callable[[Mapping[str, Any]], bool]) -> None:
    """The daemon writes the state the banner shows just after it answers: wait a moment until it says
    the change, so the next page does not show a hold that is already dealt with."""
    for _ in range(int(SETTLE_SECONDS / 0.05)):
        if done(pages.status()):
            return
        await asyncio.sleep(0.05)


def _hold_gone(seen: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda state: (state.get("held") or {}).get("key") != seen or not seen


def _held(pages: Pages, request: Request, title: str, message: str, status: int) -> Response:
    return page(pages, request, "held.html", {"title": title, "message": message}, status)


async def secret_page(pages: Pages, request: Request) -> Response:
    """GET: what was found in a held file, where (never the secret), and the button. POST: commit it once
    as it was reviewed (`committer allow-secret`); a file changed since is refused and shown again."""
    if request.method == "POST":
        form = await _checked_form(pages, request, "/secret")
        if isinstance(form, Response):
            return form
        path = history.check_path(shown.from_url(form.get("path", "")))
        log.info("page_allow_secret", path=shown.readable(path))
        try:
            answer = (await run_in_threadpool(pages.request, AllowSecret(path, form.get("sha", ""), by="pages")))
        except CommitterError as exc:
            return await _review(pages, request, path, exc.message, 409)
        name = shown.readable(path)
        await _settled(pages, lambda state: all(f.get("path") != name for f in state.get("held_files") or []))
        return RedirectResponse(f"/commit/{answer.payload['sha']}", 303)
    path = history.check_path(query(request).get("path", ""))
    if not pages.access.same_origin_get(request.headers):
        log.warning("page_refused", path="/secret", reason="secret review not asked from these pages",
                    site=request.headers.get("sec-fetch-site"))
        return HTMLResponse("<!doctype html><title>Held file</title><p>This page opens only from the history "
                            f"pages. <a href=\"/secret?path={shown.url_part(path)}\">Look at the held file</a></p>",
                            403)
    return await _review(pages, request, path, None, 200)


async def _review(pages: Pages, request: Request, path: str, refused: str | None, status: int) -> Response:
    try:
        seen = (await run_in_threadpool(pages.request, AllowSecret(path, dry_run=True, by="pages"))).payload
    except CommitterError as exc:
        return _held(pages, request, "That did not work", exc.message, 409 if refused else 404)
    return page(pages, request, "held.html", {"title": f"Held: {path}", "seen": seen, "path": path,
                                              "refused": refused}, status)


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

"""Finding things on the pages: /search (names and content, past versions on request), /search/names (the
JSON the search box reads as you type), /files (what exists now, by folder), and "did you mean" when a
path typed in the path box has no history. The search itself is committer.ops.search, the CLI's too."""

from __future__ import annotations

import os
from dataclasses import dataclass

from committer.core.errors import ConfigError, GitError
from committer.git.repo import GitRepo
from committer.ops import search as finder
from committer.serve import history, shown
from committer.serve.pages import Pages, file_page, page, path_tail, query, timeline
from committer.serve.web import Request, Response, json_response
from committer.serve.work import Job

SECONDS = 2.0  # each git command of a page's search: the page's own deadline is 10 s
TYPED_MAX = 10  # names offered as you type
SUGGESTED = 8  # names offered under "did you mean"
FILES_MAX = 1000  # files a /files page lists with their folders; past it, one folder at a time


@dataclass(frozen=True)
class Entry:
    """One row of /files: a file (size) or a folder, by its full path."""

    path: str
    folder: bool
    size: int | None = None

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


async def search_page(pages: Pages, request: Request) -> Response:
    """/search?q=TEXT[&history=1]: names, content of the newest version, and past versions on request."""
    params = query(request)
    text = params.get("q", "").strip()
    past = params.get("history") == "1"

    def build(job: Job) -> Response:
        found, problem = None, None
        if text:
            try:
                found = finder.search(pages.repo, text, history=past, seconds=SECONDS)
            except ConfigError as exc:
                problem = exc.message.removeprefix("search: ")
        job.check()
        head = pages.repo.head()
        return page(pages, request, "search.html", {
            "title": f"Search: {text}" if text else "Search", "q": text, "history": past, "found": found,
            "problem": problem, "head": head or "", "now": pages.clock(),
        })

    return await pages.pool.run(request.receive, build, "search")


async def typed_names(pages: Pages, request: Request) -> Response:
    """/search/names?q=TEXT: the first names holding TEXT, as JSON, for the search box."""
    text = query(request).get("q", "").strip()
    if not text or len(text) > finder.TEXT_MAX or any(c in text for c in "\0\r\n"):
        return json_response(200, {"names": [], "more": False})

    def build(job: Job) -> Response:
        found = finder.names(pages.repo, text, [], most=TYPED_MAX + 1, seconds=SECONDS)
        job.check()
        return json_response(200, {"names": [{"path": shown.readable(p), "href": f"/file/{shown.url_path(p)}"}
                                             for p in found[:TYPED_MAX]], "more": len(found) > TYPED_MAX})

    return await pages.pool.run(request.receive, build, "names")


def no_history(repo: GitRepo, path: str, seconds: float = SECONDS) -> bool:
    """Whether nothing was ever saved under `path` (not in the newest version, in no commit). The newest
    version is looked at first; the history (walked to its start for a name never saved) only for `seconds`:
    past them the path is taken to have a history, and its page says what there is."""
    return bool(path) and look_up(repo, path, seconds) is None


def look_up(repo: GitRepo, path: str, seconds: float = SECONDS) -> str | None:
    """What `path` is in the newest version ("tree" for a folder, "blob", "commit"); "" when it is not
    there but a commit held it (or the walk ran out of time, or there is no commit yet); None when no
    commit ever held it."""
    kind = history.path_kind(repo, path)
    if kind is not None:
        return kind
    try:
        with repo.stream(["log", "-1", "-z", "--format=%H", repo.ref, "--", path], seconds=seconds) as records:
            return "" if any(record.strip() for record in records) else None
    except GitError:  # stopped at its deadline, or no commit yet: not known to have no history
        return ""


def near(repo: GitRepo, path: str) -> list[str]:
    """Names in the newest version holding the last part of `path` (any case)."""
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return finder.names(repo, tail, [], most=SUGGESTED, seconds=SECONDS) if tail else []


def _did_you_mean(pages: Pages, request: Request, path: str) -> Response:
    return page(pages, request, "search.html", {
        "title": f"Nothing under {path}", "q": path.rsplit("/", 1)[-1], "history": False, "found": None,
        "problem": None, "missing": path, "suggestions": near(pages.repo, path), "head": "", "now": pages.clock(),
    }, 404)


async def _unknown(pages: Pages, request: Request, path: str) -> bool:
    found: bool = await pages.pool.run(request.receive, lambda job: no_history(pages.repo, path), "path")
    return found


async def timeline_or_suggest(pages: Pages, request: Request) -> Response:
    """The timeline; for a path with no history at all, the names it may have meant."""
    path = history.check_path(query(request).get("path", "").strip())
    if path and await _unknown(pages, request, path):
        return await pages.pool.run(request.receive, lambda job: _did_you_mean(pages, request, path), "suggest")
    return await timeline(pages, request)


async def file_or_suggest(pages: Pages, request: Request) -> Response:
    """A file's or folder's history; for a path with no history at all, the names it may have meant."""
    path = history.check_path(path_tail(request, "/file/"))
    if not path:
        return await file_page(pages, request)
    kind = await pages.pool.run(request.receive, lambda job: look_up(pages.repo, path), "path")
    if kind is None:
        return await pages.pool.run(request.receive, lambda job: _did_you_mean(pages, request, path), "suggest")
    return await file_page(pages, request, kind == "tree")  # the folder check read once, not twice


def listing(repo: GitRepo, folder: str) -> tuple[list[tuple[str, list[Entry]]], bool, bool]:
    """(folder -> its files, whether the tree was too big and only `folder`'s own entries are listed, whether
    even those are more than FILES_MAX and only the first FILES_MAX are)."""
    head = repo.head()
    if head is None:
        return [], False, False
    prefix = f"{folder}/" if folder else ""
    scope = ["--", prefix] if prefix else []
    groups: dict[str, list[Entry]] = {}
    count = 0
    with repo.stream(["ls-tree", "-r", "-z", "-l", "--full-tree", head, *scope], seconds=SECONDS) as records:
        for record in records:
            count += 1
            if count > FILES_MAX:
                break
            entry = _entry(record)
            if entry is not None:
                groups.setdefault(entry.path.rpartition("/")[0], []).append(entry)
    if count <= FILES_MAX:
        return sorted(groups.items()), False, False
    entries: list[Entry] = []
    cut = False
    with repo.stream(["ls-tree", "-z", "-l", "--full-tree", head, *scope], seconds=SECONDS) as records:
        for record in records:
            if len(entries) >= FILES_MAX:
                cut = True  # one folder of a million files: the page lists the first ones
                break
            entry = _entry(record)
            if entry is not None:
                entries.append(entry)
    entries.sort(key=lambda e: (not e.folder, e.path))
    return [(folder, entries)], True, cut


def _entry(record: bytes) -> Entry | None:
    meta, _, raw = record.partition(b"\t")
    fields = meta.split()
    if len(fields) != 4 or not raw:
        return None
    kind, size = fields[1], fields[3]
    path = os.fsdecode(raw)
    if kind == b"tree":
        return Entry(path, True)
    return Entry(path, False, int(size) if size.isdigit() else None) if kind == b"blob" else None


async def files_page(pages: Pages, request: Request) -> Response:
    """/files[?in=FOLDER]: the files that exist now, by folder."""
    folder = history.check_path(query(request).get("in", "").strip())

    def build(job: Job) -> Response:
        if folder and not history.is_folder(pages.repo, folder):
            raise history.NotFound(f"{shown.readable(folder)} is not a folder of the newest version")
        groups, one_level, cut = listing(pages.repo, folder)
        job.check()
        crumbs = [(part, "/".join(folder.split("/")[: i + 1])) for i, part in enumerate(folder.split("/"))] \
            if folder else []
        return page(pages, request, "files.html", {
            "title": f"Files in {folder}" if folder else "Files", "folder": folder, "groups": groups,
            "one_level": one_level, "cut": cut, "crumbs": crumbs, "files_max": FILES_MAX,
            "count": sum(1 for _f, entries in groups for e in entries if not e.folder),
        })

    return await pages.pool.run(request.receive, build, "files")

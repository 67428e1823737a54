"""A folder opened and closed (by `git status`, `ls`, a backup's walk) is dropped where the inotify
observer reads it, before watchdog resolves its path; a file written beside it still arrives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from committer.policy.filters import PathFilter
from committer.watch.inbox import Inbox
from committer.watch.inotify import InotifyObserver
from committer.watch.observer import Scope
from tests.conftest import wait_for


def test_folder_opens_never_reach_watchdogs_path_work_and_a_write_still_does(tmp_path: Path) -> None:
    for name in ("a", "a/b", "c"):
        (tmp_path / name).mkdir()
    inbox = Inbox(lambda: None)
    observer = InotifyObserver(Scope(str(tmp_path), PathFilter(tmp_path, ""), inbox))
    observer.start()
    try:
        native = observer._observer
        assert native is not None
        groups = [getattr(emitter, "_inotify", None) for emitter in native.emitters]
        if not groups or any(group is None or not hasattr(group, "_build_event_source_path") for group in groups):
            pytest.skip("this watchdog reads inotify another way")
        resolved: list[object] = []
        for group in groups:
            own = group._build_event_source_path
            group._build_event_source_path = lambda event, own=own: resolved.append(event) or own(event)
        for _ in range(20):
            for folder in ("", "a", "a/b", "c"):
                os.listdir(tmp_path / folder)
        (tmp_path / "a" / "b" / "note.md").write_text("seen")
        wait_for(lambda: "a/b/note.md" in inbox.drain()[0], what="the write reaches the inbox")
        assert resolved, "the write's events went through watchdog"
        assert all(not (getattr(event, "mask", 0) & 0x40000000) or getattr(event, "mask", 0) & ~0x40000030
                   for event in resolved), "a folder's open or close reached watchdog's path work"
    finally:
        observer.stop()

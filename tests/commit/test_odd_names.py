"""Any name the filesystem allows is committed byte-exact, shown escaped, restorable, and blocks nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from committer.commit.committer import Committer
from committer.core import events
from committer.core.paths import display_path, display_text, parse_display
from committer.core.settings import load_settings
from committer.git.setup import open_repository
from committer.policy.filters import PathFilter
from tests.commit.test_pipeline import make_pipeline, trailer
from tests.conftest import Layout, committer, git, wait_for

# Not UTF-8, and sorting before every ordinary name (the subject lists the first two).
FIRST = b"\x01bad\xff.md"
SECOND = b"!\xfe.md"
ODD = [
    FIRST,
    SECOND,
    b"bad\xff\xfename.md",
    b"dir\xe9/inner\xc3.md",  # a folder whose name is not UTF-8 either
    b"new\nline.md",
    b"-leading-dash.md",
    b":(glob)*.md",
    b":!exclude.md",
    b"back\\slash\\xff.md",  # looks like an escape: shown with the backslashes doubled
    b"L" * 252 + b".md",  # 255 bytes, the longest name most filesystems take
    "\u202eevil.md".encode(),
]


def write_raw(layout: Layout, name: bytes, content: bytes) -> None:
    path = os.fsencode(layout.data) + b"/" + name
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content)


def raw_tree(git_dir: Path, rev: str = "HEAD") -> dict[bytes, bytes]:
    """Path -> content of every file of a commit, as bytes (no text decoding anywhere)."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    listing = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "-r", "-z", rev],
                             capture_output=True, check=True, env=env).stdout
    found = {}
    for record in filter(None, listing.split(b"\0")):
        meta, _, path = record.partition(b"\t")
        sha = meta.split(b" ")[2].decode()
        found[path] = subprocess.run(["git", f"--git-dir={git_dir}", "cat-file", "blob", sha],
                                     capture_output=True, check=True, env=env).stdout
    return found


def raw_message(git_dir: Path, rev: str = "HEAD") -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", "log", "-1", "--format=%B", rev],
                          capture_output=True, check=True).stdout


def test_display_escapes_only_what_needs_it_and_maps_back_to_the_same_bytes() -> None:
    assert display_path("notes/café.md") == "notes/café.md"
    assert display_path(os.fsdecode(b"bad\xff\xfename.md")) == "bad\\xff\\xfename.md"
    assert display_path("new\nline.md") == "new\\x0aline.md"
    assert display_path("back\\slash.md") == "back\\\\slash.md"
    assert display_path("\u202eevil.md") == "\\u202eevil.md"
    for name in ODD:
        text = display_path(os.fsdecode(name))
        text.encode("ascii" if name != b"L" * 252 + b".md" else "utf-8")  # printable, valid text
        assert "\n" not in text and os.fsencode(parse_display(text)) == name


def test_text_from_other_writers_is_one_terminal_line_with_its_backslashes_kept() -> None:
    assert display_text("chore(sync): save bad\\xff.md") == "chore(sync): save bad\\xff.md"
    assert display_text("\x1b[2Jred\x07 \u202eevil") == "\\x1b[2Jred\\x07 \\u202eevil"
    assert display_text(os.fsdecode(b"caf\xe9")) == "caf\\xe9"


def test_names_that_are_not_utf8_sorting_first_do_not_block_the_edit_beside_them(layout: Layout) -> None:
    assert committer("init", env=layout.env).returncode == 0
    write_raw(layout, b"a.md", b"one\n")
    assert committer("run", "--once", env=layout.env).returncode == 0
    write_raw(layout, FIRST, b"first\n")
    write_raw(layout, SECOND, b"second\n")
    write_raw(layout, b"a.md", b"one\nedit\n")
    write_raw(layout, b"key\xff.md", b"aws_secret: AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
              b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAt"
              b"zc2gtZWQyNTUxOQAAACB\n-----END OPENSSH PRIVATE KEY-----\n")
    proc = committer("run", "--once", env=layout.env)
    assert proc.returncode == 0, proc.stderr
    assert "commit_failed" not in proc.stderr
    skipped = [json.loads(line) for line in proc.stderr.splitlines() if '"skip"' in line]
    assert [e["path"] for e in skipped] == ["key\\xff.md"]  # held back, and named as everywhere else
    tree = raw_tree(layout.git_dir)
    assert tree == {b"a.md": b"one\nedit\n", FIRST: b"first\n", SECOND: b"second\n"}
    body = raw_message(layout.git_dir)
    subject = body.decode("utf-8").splitlines()[0]  # strict: the message is valid UTF-8
    assert subject in ("chore(sync): save \\x01bad\\xff.md and 2 more", "chore(sync): save !\\xfe.md and 2 more",
                       "chore(sync): save a.md and 2 more")
    # every log line is valid JSON in valid UTF-8, with no surrogate left in it
    for line in proc.stderr.splitlines():
        json.loads(line)
        assert "\\udc" not in line
    # status names the held file the same way, as JSON in valid UTF-8 and as text for people
    shown = committer("status", "--json", env=layout.env)
    assert shown.returncode == 0, shown.stderr
    shown.stdout.encode("utf-8")
    assert "\\udc" not in shown.stdout
    assert [h["path"] for h in json.loads(shown.stdout)["held_files"]] == ["key\\xff.md"]
    text = committer("status", env=layout.env)
    assert text.returncode == 0, text.stderr
    assert "key\\xff.md" in text.stdout


def test_every_odd_name_is_committed_byte_exact_and_restored_by_the_cli(layout: Layout) -> None:
    p = make_pipeline(layout)
    for i, name in enumerate(ODD):
        write_raw(layout, name, b"v1 %d\n" % i)
    write_raw(layout, b"plain.md", b"plain\n")
    result = p.commit([os.fsdecode(n.split(b"/")[0]) for n in ODD] + ["plain.md"])
    assert result.sha is not None
    assert raw_tree(layout.git_dir) == {**{n: b"v1 %d\n" % i for i, n in enumerate(ODD)}, b"plain.md": b"plain\n"}
    first = result.sha
    for i, name in enumerate(ODD):
        write_raw(layout, name, b"v2 %d\n" % i)
    assert p.commit([os.fsdecode(n.split(b"/")[0]) for n in ODD]).sha is not None
    raw_message(layout.git_dir).decode("utf-8")
    for i, name in enumerate(ODD):
        # once as the shell passes the name (bytes in argv), once as committer shows it (escaped text)
        spelled = name if i % 2 else display_path(os.fsdecode(name)).encode()
        proc = subprocess.run([sys.executable, "-m", "committer", "restore", "--to", first, "--", spelled],
                              capture_output=True, env={**os.environ, **layout.env, "COMMITTER_LOG_FORMAT": "json"})
        assert proc.returncode == 0, (name, proc.stderr)
        with open(os.fsencode(layout.data) + b"/" + name, "rb") as handle:
            assert handle.read() == b"v1 %d\n" % i, name
    assert raw_tree(layout.git_dir)[FIRST] == b"v1 0\n"
    assert "restore" in json.dumps(trailer(layout))


def test_log_shows_odd_names_escaped_and_finds_the_history_of_one(layout: Layout) -> None:
    p = make_pipeline(layout)
    name = b"bad\xff\xfename.md"
    write_raw(layout, name, b"x\n")
    p.commit([os.fsdecode(name)])
    write_raw(layout, b"other.md", b"y\n")
    p.commit(["other.md"])
    proc = subprocess.run([sys.executable, "-m", "committer", "log"], capture_output=True,
                          env={**os.environ, **layout.env})
    assert proc.returncode == 0
    assert "bad\\xff\\xfename.md" in proc.stdout.decode("utf-8")
    for spelled in (name, b"bad\\xff\\xfename.md"):
        proc = subprocess.run([sys.executable, "-m", "committer", "log", "--json", spelled], capture_output=True,
                              env={**os.environ, **layout.env})
        assert proc.returncode == 0, proc.stderr
        lines = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
        assert len(lines) == 1 and "bad\\xff\\xfename.md" in lines[0]["subject"]


def test_events_carry_odd_names_escaped_in_valid_json(layout: Layout) -> None:
    told: list[events.Event] = []
    settings = load_settings(flags={"data_dir": str(layout.data), "git_dir": str(layout.git_dir)}, env={})
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    p = Committer(settings, open_repository(settings, pfilter), pfilter, emit=told.append)
    write_raw(layout, b"old\xff.md", b"same content\n")
    p.commit([os.fsdecode(b"old\xff.md")])
    os.rename(os.fsencode(layout.data) + b"/old\xff.md", os.fsencode(layout.data) + b"/new\xfe.md")
    write_raw(layout, b"n\\ew\xfa.md", b"fresh\n")
    p.commit([os.fsdecode(b"old\xff.md"), os.fsdecode(b"new\xfe.md"), os.fsdecode(b"n\\ew\xfa.md")])
    raw = events.body(told[-1])
    decoded = json.loads(raw.decode("utf-8"))
    assert decoded["paths"]["renamed"] == [["old\\xff.md", "new\\xfe.md"]]
    assert decoded["paths"]["added"] == ["n\\\\ew\\xfa.md"]
    assert "\\udc" not in raw.decode()
    held = json.loads(events.body(events.hold(action="set", reason="x", paths=[os.fsdecode(b"h\xff")])))
    assert held["paths"] == ["h\\xff"]


@pytest.mark.parametrize("observer", ["inotify", "poll"])
def test_the_running_daemon_commits_odd_names_with_normal_edits(layout: Layout, start_daemon, observer: str) -> None:  # type: ignore[no-untyped-def]
    write_raw(layout, b"a.md", b"a\n")
    daemon = start_daemon("--observer", observer, "--poll-interval", "200ms")
    daemon.wait_event("git_commit")
    write_raw(layout, FIRST, b"first\n")
    write_raw(layout, SECOND, b"second\n")
    write_raw(layout, b"new\nline.md", b"nl\n")
    write_raw(layout, b"a.md", b"a\nedit\n")

    def landed() -> bool:
        try:
            tree = raw_tree(layout.git_dir)
        except subprocess.CalledProcessError:
            return False
        return tree.get(b"a.md") == b"a\nedit\n" and FIRST in tree and SECOND in tree and b"new\nline.md" in tree

    wait_for(landed, 30, "the odd names and the edit committed")
    assert not daemon.events("commit_failed")
    commits = daemon.events("git_commit")
    assert commits and all("\\udc" not in json.dumps(e) for e in commits)
    for rev in git(layout.git_dir, "rev-list", "HEAD").split():
        raw_message(layout.git_dir, rev).decode("utf-8")
    assert daemon.stop() == 0


def test_the_reconcile_finds_odd_names_changed_while_nothing_watched(layout: Layout, reconcile_way: str) -> None:
    p = make_pipeline(layout)
    for i, name in enumerate(ODD):
        write_raw(layout, name, b"v1 %d\n" % i)
    p.reconcile()
    for i, name in enumerate(ODD):
        write_raw(layout, name, b"v2 %d\n" % i)
    os.unlink(os.fsencode(layout.data) + b"/" + SECOND)
    p.reconcile()
    expected = {n: b"v2 %d\n" % i for i, n in enumerate(ODD) if n != SECOND}
    assert raw_tree(layout.git_dir) == expected, reconcile_way
    raw_message(layout.git_dir).decode("utf-8")
    assert p.reconcile().sha is None  # and nothing is left to do


def test_restore_through_the_running_daemon_takes_an_odd_name(layout: Layout, start_daemon) -> None:  # type: ignore[no-untyped-def]
    write_raw(layout, FIRST, b"v1\n")
    daemon = start_daemon()
    daemon.wait_event("git_commit")
    first = git(layout.git_dir, "rev-parse", "HEAD").strip()
    write_raw(layout, FIRST, b"v2\n")
    wait_for(lambda: raw_tree(layout.git_dir).get(FIRST) == b"v2\n", 30, "the edit committed")
    proc = subprocess.run([sys.executable, "-m", "committer", "restore", "--to", first, "--", "\\x01bad\\xff.md"],
                          capture_output=True, env={**os.environ, **layout.env})
    assert proc.returncode == 0, proc.stderr
    assert b"restored \\x01bad\\xff.md from" in proc.stdout
    wait_for(lambda: raw_tree(layout.git_dir).get(FIRST) == b"v1\n", 30, "the restore committed")
    assert "restore" in json.dumps(trailer(layout)) and trailer(layout)["path"] == "\\x01bad\\xff.md"
    assert daemon.stop() == 0

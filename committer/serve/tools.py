"""The agents' tools as an MCP host lists them: each one's name, what it does (the text a model reads to
choose it) and the JSON schema of its arguments. Pure data; the work is in serve/agents.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HISTORY_MAX = 200  # changes one `history` call lists
SYNC_WAIT_MAX = 600  # the longest sync_now waits for the remote
WHEN = ("a version: a commit id from history, a snapshot tag, or a date as people say it (2026-12-01, "
        "2026-12-01 18:00, yesterday 18:00, last tuesday, 2 hours ago: the version saved then)")
PATH = ("a file (or for history and restore a folder) of the data directory, relative to it, as history "
        "names it: notes/plan.md")


@dataclass(frozen=True)
class Spec:
    """One tool: its name, description, argument schema, and whether it changes anything."""

    name: str
    description: str
    schema: dict[str, Any]
    writes: bool = False
    title: str = ""


@dataclass(frozen=True)
class Result:
    """What a tool answers: text for the model, the same as JSON when it is structured, or an error line."""

    text: str
    data: dict[str, Any] | None = field(default=None)
    error: bool = False
    structured: bool = True  # `data` is the answer itself (its text the JSON); else it only describes `text`


def _schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _text(description: str, most: int = 1000) -> dict[str, Any]:
    return {"type": "string", "description": description, "maxLength": most}


TOOLS: tuple[Spec, ...] = (
    Spec("history", (
        "List the changes saved in the data directory's history, newest first: each with its id (a version "
        "to give show, diff or restore), its time (UTC), its kind (save, rename, delete, restore, merge, "
        "conflict), its message and the paths it touched. Narrow it to a file or folder with path, and to a "
        "time with since and until. Read-only."), _schema({
            "path": _text(PATH),
            "since": _text("only changes at or after this date (2026-12-01, yesterday 18:00, 2 hours ago)", 100),
            "until": _text("only changes at or before this date (a bare day means its end)", 100),
            "limit": {"type": "integer", "minimum": 1, "maximum": HISTORY_MAX, "default": 20,
                      "description": "how many changes at most"},
        }), title="History of changes"),
    Spec("show", (
        "Show a file as it was at a version (the newest saved version by default): its text, or for a binary "
        "file its size and type only. Read-only."), _schema({
            "path": _text(PATH), "at": _text(f"which version: {WHEN}; default the newest saved", 200),
        }, ("path",)), title="A file as it was"),
    Spec("diff", (
        "The changes to one file between two versions as a unified diff (cut at 100 kB): by default its last "
        "change; follows the file across renames. Read-only."), _schema({
            "path": _text(PATH),
            "from": _text(f"the older version: {WHEN}; default the one before the last change", 200),
            "to": _text(f"the newer version: {WHEN}; default the newest saved", 200),
        }, ("path",)), title="Changes to a file"),
    Spec("search", (
        "Find files by name (part of a path, any case) and by content (a line holding the text, any case) in "
        "the newest version; with in_history also the past versions where the text came or went. Read-only."),
        _schema({
            "text": _text("the text to look for: one line", 200),
            "in_history": {"type": "boolean", "default": False, "description": "also search past versions"},
        }, ("text",)), title="Search names and content"),
    Spec("status", (
        "The state of the backup: the last commit, the last push and what waits to be pushed, deletions and "
        "files held back by the safety rules, conflicts, the remote, the last error. Read-only."),
        _schema({}), title="Backup status"),
    Spec("restore", (
        "Put a file or folder back as it was at a version, as a new commit in the history (nothing is lost: the "
        "current content stays in the history, and a file whose content is in no commit is kept beside as a "
        "conflict copy, never deleted). By default a dry run that changes nothing and says what it would do; "
        "it writes only with dry_run=false."), _schema({
            "path": _text(f"{PATH}; . for the whole data directory"),
            "to": _text(f"the version to bring back: {WHEN}", 200),
            "dry_run": {"type": "boolean", "default": True,
                        "description": "true (the default): only say what would change; false: do it"},
        }, ("path", "to")), writes=True, title="Restore a version"),
    Spec("snapshot", (
        "Mark the current state with a named snapshot (an annotated tag, pushed with the next push), after "
        "saving what is pending. Changes no file."), _schema({
            "message": _text("what this snapshot is, e.g. 'before reorganising the notes'", 500),
        }, ("message",)), writes=True, title="Take a snapshot"),
    Spec("sync_now", (
        "Save what is pending in the data directory now (no waiting for the quiet time), commit it and push it "
        "to the remote; with wait (the default) answer only once the remote has the commit, or say what is in "
        "the way (files held back, a deletion hold, the remote down) when timeout_seconds run out. Use it "
        "before telling the person their notes are backed up. Calls made together share one commit."), _schema({
            "wait": {"type": "boolean", "default": True,
                     "description": "true (the default): answer once the remote has the commit; false: at once"},
            "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": SYNC_WAIT_MAX, "default": 60,
                                "description": "how long to wait for the remote at most"},
        }), writes=True, title="Back up now"),
)

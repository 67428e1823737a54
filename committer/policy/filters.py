"""What never goes in: built-in ignores, config patterns and the data directory's .bmignore."""

from __future__ import annotations

import copy
import hashlib
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pathspec

from committer.core import fsio, logs

log = logs.get("committer.filters")

BMIGNORE = ".bmignore"
BMIGNORE_MAX = 1 << 20
BMMETA = ".bmmeta"

# gitignore syntax; both lists are also written to the repository's info/exclude so git's own scans agree.
# Litter: what editors, sync tools and operating systems leave beside notes. It is never content, so it is
# left out without a word (not listed in held_files, not logged): listing every swap file would bury the
# files that matter.
LITTER: tuple[str, ...] = (
    # repositories and our own metadata file (it goes into the trailer, not the tree)
    ".git",
    BMMETA,
    # editors
    "*.swp",
    "*.swo",
    "*.swx",
    ".*.sw?",
    "*~",
    ".#*",
    "#*#",
    ".~lock.*#",
    "4913",
    # temporary and partial files of sync tools
    "*.tmp",
    "*.temp",
    "*.partial",
    "*.part",
    "*.crdownload",
    ".syncthing.*.tmp",
    "~syncthing~*.tmp",
    ".fuse_hidden*",
    ".nfs*",
    # operating systems
    ".DS_Store",
    "._*",
    "Thumbs.db",
    "ehthumbs.db",
    "desktop.ini",
    ".Trash-*",
    ".Spotlight-V100",
    ".fseventsd",
)

# OpenSSH's key file names (ssh-keygen -t ...): the private key, its public half and its certificate,
# by exact name, so a note that mentions one ("id_rsa rotation runbook.md") is not taken for a key.
_SSH_KEY_TYPES = ("rsa", "dsa", "ecdsa", "ecdsa_sk", "ed25519", "ed25519_sk", "xmss")
SSH_KEY_NAMES: tuple[str, ...] = tuple(
    f"id_{kind}{suffix}" for kind in _SSH_KEY_TYPES for suffix in ("", ".pub", "-cert.pub")
)

# Files that hold secrets by name: kept out, and listed in held_files as `name:<pattern>`. `*.pem` holds
# keys or certificates in PEM, `*.p12`/`*.pfx` are PKCS#12 key stores (binary, so the content scanner
# cannot see their keys); no note or document format uses these endings. `*.key` is not here: Keynote
# decks and license files share it; a .key file that holds a PEM private key is held by the content
# scanner (policy.secrets) like any other file.
SECRET_NAMES: tuple[str, ...] = (
    ".env",
    ".env.*",
    ".envrc",
    "*.pem",
    "*.p12",
    "*.pfx",
    *SSH_KEY_NAMES,
    "credentials.json",
    ".netrc",
    ".npmrc",
    ".pypirc",
)

DEFAULT_IGNORES: tuple[str, ...] = (*LITTER, *SECRET_NAMES)

NAME_RULE = "name:"  # the prefix of a held_files reason that a name pattern gives


def _compile(lines: Iterable[str]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(list(lines))


def _combined(spec: pathspec.GitIgnoreSpec) -> re.Pattern[str] | None:
    """One regex for a set of patterns without negations: one match per path, not one per pattern."""
    patterns = [p for p in spec.patterns if p.include is not None]
    if not patterns or any(not p.include or p.regex is None for p in patterns):
        return None
    parts = [p.regex.pattern.replace("(?P<ps_d>/)", "/") for p in patterns if p.regex is not None]
    return re.compile("|".join(f"(?:{part})" for part in parts))


def unmatched(patterns: Iterable[str]) -> Callable[[str], bool]:
    """Whether a path matches none of these gitignore patterns (true for every path when there are none)."""
    lines = [p for p in patterns if p.strip()]
    if not lines:
        return lambda _rel: True
    spec = _compile(lines)
    return lambda rel: not spec.match_file(rel)


class PathFilter:
    """Decides whether a path relative to the data directory is ignored."""

    def __init__(self, data_dir: Path, extra: Iterable[str] = ()) -> None:
        self.data_dir = data_dir
        self.extra = tuple(extra)
        self._base = _compile((*DEFAULT_IGNORES, *self.extra))
        self._base_regex = _combined(self._base)
        self._litter = _combined(_compile(LITTER))
        self._kept = _compile((*SECRET_NAMES, *self.extra))
        self._user: pathspec.GitIgnoreSpec | None = None
        self._user_lines: list[str] = []
        self._user_stamp: tuple[int, int, int] | None = None
        self._mirror: Path | None = None
        self.generation = 0
        self.refresh()

    def refresh(self) -> bool:
        """Re-read .bmignore if it changed; True when the rules changed.

        A .bmignore that is a symlink is not read (nothing outside the data directory is): it counts
        as absent, with a warning.
        """
        path = self.data_dir / BMIGNORE
        try:
            st = os.lstat(path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp == self._user_stamp:
            return False
        self._user_stamp = stamp
        lines: list[str] = []
        if stamp is not None:
            raw = fsio.read_beneath(self.data_dir, BMIGNORE, BMIGNORE_MAX)
            if raw is None:
                log.warning("bmignore_unreadable", path=BMIGNORE,
                            why="not a regular file (a symlink is never followed) or cannot be read")
            else:
                lines = raw.decode("utf-8", "replace").splitlines()
        self._user_lines = lines
        self._user = _compile(lines) if lines else None
        self.generation += 1
        self._write_mirror()
        return True

    def with_bmignore(self, content: bytes | None) -> PathFilter:
        """The same built-in and configured rules with `content` as the .bmignore (None: no .bmignore): the
        rules a pull's new tree brings, decided before its .bmignore is written here. Reads nothing, writes
        nothing (no mirror)."""
        other = copy.copy(self)
        lines = content[:BMIGNORE_MAX].decode("utf-8", "replace").splitlines() if content else []
        other._user_lines = lines
        other._user = _compile(lines) if lines else None
        other._mirror = None
        return other

    def mirror_to(self, path: Path) -> None:
        """Keep a copy of .bmignore's rules at `path` (the repository's excludes file for git's own scans),
        rewritten whenever they change, so git never reads a file of the data directory itself."""
        self._mirror = path
        self._write_mirror()

    def _write_mirror(self) -> None:
        if self._mirror is None:
            return
        lines = ["# the data directory's .bmignore, copied by committer", *self._user_lines]
        data = "".join(f"{line}\n" for line in lines).encode()
        try:
            if self._mirror.read_bytes() == data:
                return
        except OSError:
            pass
        try:
            fsio.write_atomic(self._mirror, data)
        except OSError as exc:
            log.warning("bmignore_copy_failed", path=str(self._mirror), error=exc.strerror)

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        """True when the path, or a directory above it, is ignored."""
        if not rel or rel == ".":
            return False
        parts = rel.split("/")
        if ".git" in parts:
            return True
        candidate = rel + "/" if is_dir else rel
        if self._base_regex is not None:
            if self._base_regex.match(candidate):
                return True
        elif self._base.match_file(candidate):
            return True
        return self._user is not None and bool(self._user.match_file(candidate))

    def rule(self, rel: str, is_dir: bool = False) -> str | None:
        """`name:<pattern>` of the rule that keeps a path out and is listed in held_files (the secret names,
        the ignore setting, .bmignore); None when no rule does, or when the path is litter (never listed)."""
        if not rel or rel == "." or ".git" in rel.split("/"):
            return None
        candidate = rel + "/" if is_dir else rel
        if self._litter is not None and self._litter.match(candidate):
            return None
        for spec in (self._kept, self._user):
            if spec is None:
                continue
            found = spec.check_file(candidate)
            if found.include and found.index is not None:
                return NAME_RULE + str(spec.patterns[found.index].pattern)
        return None

    def kept_out(self, rel: str, is_dir: bool = False) -> tuple[str, str] | None:
        """(path, rule) of what keeps an ignored path out: the path itself, or the highest folder above it
        that a listed rule keeps out (`node_modules` once, not each file in it); None for litter."""
        parts = rel.split("/")
        for n in range(1, len(parts) + 1):
            sub = "/".join(parts[:n])
            last = n == len(parts)
            if not self.ignored(sub, is_dir=is_dir if last else True):
                continue
            found = self.rule(sub, is_dir=is_dir if last else True)
            return None if found is None else (sub, found)
        return None

    def fingerprint(self) -> str:
        """A digest of every rule in force: equal digests, equal decisions."""
        text = "\0".join([*DEFAULT_IGNORES, "", *self.extra, "", *self._user_lines])
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

    def exclude_lines(self) -> list[str]:
        """The built-in and configured patterns, for the repository's info/exclude."""
        return [*DEFAULT_IGNORES, *self.extra]



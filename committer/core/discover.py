"""Which repository a command means when it is not told, found as git finds its own.

Without --data-dir, --git-dir, --config (or COMMITTER_DATA_DIR, COMMITTER_GIT_DIR, COMMITTER_CONFIG), in this
order: the running daemon whose data directory holds the current directory; a `committer.toml` in the
current directory or a parent (the user's own only: see `_check_owner`); the user's
`$XDG_CONFIG_HOME/committer/committer.toml`; the only daemon running as this user; else the defaults (and
`/etc/committer/committer.toml` when it is there)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from committer.core import runtime
from committer.core.configfile import read_config_file
from committer.core.errors import ConfigError
from committer.core.paths import display_path
from committer.core.settings import DEFAULT_CONFIG_FILE as SYSTEM_FILE

FILE_NAME = "committer.toml"
# How a command found its repository: the keys of `status --json`'s "found".
GIVEN, DAEMON_HERE, NEARBY, USER, ONLY_DAEMON, DEFAULTS = (
    "given", "daemon_here", "committer_toml", "user_config", "only_daemon", "defaults")


@dataclass(frozen=True)
class Found:
    """How the repository was found: `how` (one of the names above), a sentence for people, the config file
    to read (None: none), and the values a daemon's record gives (data_dir, git_dir, branch)."""

    how: str
    text: str
    config: Path | None = None
    values: dict[str, object] = field(default_factory=dict)
    pid: int | None = None

    def shown(self) -> dict[str, object]:
        """As `status --json` shows it."""
        return {"how": self.how, "text": self.text, "config": str(self.config) if self.config else None,
                "pid": self.pid}


def user_config(env: Mapping[str, str]) -> Path | None:
    """$XDG_CONFIG_HOME/committer/committer.toml (~/.config when unset); None without a home."""
    base = env.get("XDG_CONFIG_HOME", "")
    if not (base and os.path.isabs(base)):
        home = env.get("HOME", "")
        if not home:
            return None
        base = os.path.join(home, ".config")
    return Path(base) / "committer" / FILE_NAME


def find(config_flag: str | None, env: Mapping[str, str], flags: Mapping[str, object | None],
         cwd: Path | None) -> Found:
    """The way this command finds its repository (see the module's docstring)."""
    given = _given(config_flag, env, flags)
    if given is not None:
        return given
    records = runtime.running(env)
    if cwd is not None:
        here = [item for item in records if item.contains(cwd)]
        if here:
            item = max(here, key=lambda item: len(item.data_dir.parts))  # the innermost of nested ones
            return _from_record(item, DAEMON_HERE, "data dir contains the current directory")
        for folder in (cwd, *cwd.parents):
            candidate = folder / FILE_NAME
            if _is_file(candidate):
                _check_owner(candidate, env)
                _check_not_data(candidate, [parent / FILE_NAME for parent in folder.parents], user_config(env))
                where = "the current directory" if folder == cwd else "a parent of the current directory"
                return Found(NEARBY, f"{candidate} (in {where})", candidate)
    mine = user_config(env)
    if mine is not None and _is_file(mine):
        return Found(USER, f"{mine} (the user's config)", mine)
    if len(records) == 1:
        return _from_record(records[0], ONLY_DAEMON, "the only daemon running as this user")
    system = SYSTEM_FILE if _is_file(SYSTEM_FILE) else None
    others = f"; {len(records)} daemons run, none of them here" if len(records) > 1 else ""
    if system is not None:
        return Found(DEFAULTS, f"{system} (the system config; nothing nearer says where the data is{others})",
                     system)
    return Found(DEFAULTS, f"the defaults (no daemon here, no committer.toml, no user config{others})")


def _check_owner(path: Path, env: Mapping[str, str]) -> None:
    """A committer.toml found by looking up from the current directory is read only when it is this user's
    or root's (the link and the file it names), as git reads only a repository of the user's own
    (`safe.directory`):
    one planted in /tmp or in another user's folder would otherwise choose the repository a command acts on.
    Root may read the file of the user who ran sudo (SUDO_UID), as git allows. --config reads any file."""
    uid = os.geteuid()
    allowed = {uid, 0}  # root's files (a link to /etc/committer/committer.toml) no other user can plant
    if uid == 0 and env.get("SUDO_UID", "").isdigit():
        allowed.add(int(env["SUDO_UID"]))
    try:
        owners = {path.lstat().st_uid, path.stat().st_uid}
    except OSError:
        return
    strangers = sorted(owners - allowed)
    if strangers:
        shown = display_path(str(path))
        raise ConfigError("config", (
            f"{shown} belongs to user id {strangers[0]}, not to you, so it is not read (a committer.toml of "
            f"another user's could choose the repository this command acts on); give it as --config {shown} "
            "if you trust it, or run the command elsewhere"))


def _check_not_data(path: Path, outer: list[Path], mine: Path | None) -> None:
    """A committer.toml inside a data directory (the one it names itself, or one an outer committer.toml or
    the user's config names) is data: it is versioned and pushed, and a pull writes whatever the remote
    holds into it, so whoever can push to the remote could choose where this command reads and pushes."""
    for config in [path, *outer, *([mine] if mine is not None else [])]:
        if config != path and not (_is_file(config) and _owned(config)):
            continue
        data_dir = _data_dir_of(config)
        if data_dir is not None and (data_dir == path.parent or data_dir in path.parents):
            whose = "it names itself" if config == path else f"that {display_path(str(config))} names"
            shown = display_path(str(path))
            raise ConfigError("config", (
                f"{shown} lies inside the data directory {whose}, so it is data (saved, pushed, and rewritten by "
                f"a pull) and is not read as settings; keep committer.toml beside the data directory "
                f"(`data_dir = \"notes\"`), or give it as --config {shown} if you trust it"))


def _owned(path: Path) -> bool:
    try:
        return path.stat().st_uid == os.geteuid()
    except OSError:
        return False


def _data_dir_of(config: Path) -> Path | None:
    """The data directory a config file names (resolved), None when it names none or cannot be read."""
    try:
        value = read_config_file(config).get("data_dir")
    except ConfigError:
        return None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return Path(value.strip()).expanduser().resolve()
    except (OSError, RuntimeError):
        return None


def _given(config_flag: str | None, env: Mapping[str, str], flags: Mapping[str, object | None]) -> Found | None:
    """A command told where: --config, COMMITTER_CONFIG, or the data dir or git dir as a flag or variable."""
    if config_flag:
        path = Path(config_flag).expanduser()
        return Found(GIVEN, f"--config {path}", path)
    if env.get("COMMITTER_CONFIG"):
        path = Path(env["COMMITTER_CONFIG"]).expanduser()
        return Found(GIVEN, f"COMMITTER_CONFIG={path}", path)
    named = [f"--{name.replace('_', '-')}" for name in ("data_dir", "git_dir") if flags.get(name) is not None]
    named += [f"COMMITTER_{name}" for name in ("DATA_DIR", "GIT_DIR") if env.get(f"COMMITTER_{name}")]
    if not named:
        return None
    system = SYSTEM_FILE if _is_file(SYSTEM_FILE) else None
    return Found(GIVEN, f"{' and '.join(named)} given", system)


def _from_record(item: runtime.Record, how: str, why: str) -> Found:
    config = item.config if item.config is not None and _is_file(item.config) else None
    values: dict[str, object] = {"data_dir": str(item.data_dir), "git_dir": str(item.git_dir)}
    if item.branch:
        values["branch"] = item.branch
    return Found(how, f"running daemon pid {item.pid} ({why})", config, values, item.pid)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def file_to_write(found: Found, env: Mapping[str, str]) -> Path:
    """The config file a command that writes settings (`connect`) writes: the one found, else the system's
    for root and the user's for anyone else."""
    if found.config is not None:
        return found.config
    mine = user_config(env)
    return SYSTEM_FILE if os.geteuid() == 0 or mine is None else mine


def current_directory() -> Path | None:
    """The current directory, resolved; None when it was removed."""
    try:
        return Path(os.getcwd())
    except OSError:
        return None

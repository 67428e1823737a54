"""The TOML configuration file: its `[committer]` table read into setting values, unknown keys and bad syntax
named with the file, relative paths taken from the file's folder."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from committer.core.errors import ConfigError
from committer.core.settings import ROW


def read_config_file(path: Path) -> dict[str, object]:
    """Parse a TOML config file; unknown keys and bad syntax are errors naming the file. A relative path in
    it (`data_dir = "notes"`) is relative to the file's folder, wherever the command runs."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("config", f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    table = raw.get("committer", raw)
    if not isinstance(table, dict):
        raise ConfigError("config", f"{path}: [committer] must be a table")
    values: dict[str, object] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in ROW:
            raise ConfigError(f"config {path}", f"unknown setting {key!r}")
        values[name] = _anchored(name, value, path.parent)
    return values


def _anchored(name: str, value: object, folder: Path) -> object:
    """A path setting's relative value made relative to the config file's folder (`~` is the home's)."""
    if ROW[name].metavar != "PATH" or not isinstance(value, str) or not value.strip():
        return value
    text = value.strip()
    if text.startswith("~") or os.path.isabs(text):
        return value
    return str(folder.absolute() / text)

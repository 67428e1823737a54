"""examples/committer.toml, the commented starting point, read by the settings loader so it cannot drift.

Every `# key = value` line is a setting as it would read uncommented: the loader must take it, and its
value must be the setting's default unless that default is "none"/"off" (an example is shown then).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from committer.core.configfile import read_config_file
from committer.core.settings import ROW, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "committer.toml"
LINE = re.compile(r"^# ([a-z_]+) = (.+)$")
# What most set-ups touch: each must be in the example.
COMMON = {
    "data_dir", "git_dir", "branch", "remote", "token_file", "git_ssh_command", "debounce", "max_delay",
    "push_interval", "pull_interval", "shutdown_timeout", "max_delete", "lfs_threshold", "max_file_size", "ignore",
    "http", "ui_token_file", "webhook_secret_file", "log_format", "log_level", "notify_url", "author_name",
    "author_email",
}


def settings_lines() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line)
        if match:
            assert match[1] not in found, f"{match[1]} twice in {EXAMPLE.name}"
            found[match[1]] = f"{match[1]} = {match[2]}\n"
    return found


def unset(default: object) -> bool:
    """A default that means "none" or "off": the example may show any valid value."""
    return default in (None, "", (), 0)


def test_the_example_changes_nothing_as_shipped() -> None:
    assert tomllib.loads(EXAMPLE.read_text(encoding="utf-8")) == {}


def test_every_line_of_the_example_loads_and_shows_the_default(tmp_path: Path) -> None:
    lines = settings_lines()
    assert set(lines) >= COMMON, f"missing from {EXAMPLE.name}: {sorted(COMMON - set(lines))}"
    for name, text in lines.items():
        assert name in ROW, f"{EXAMPLE.name}: {name} is not a setting"
        one = tmp_path / f"{name}.toml"
        one.write_text(text)
        value = getattr(load_settings(file_values=read_config_file(one)), name)
        row = ROW[name]
        assert unset(row.default) or value == row.default, (
            f"{EXAMPLE.name} shows {text.strip()!r}, but the default of {name} is {row.shown}")


def test_the_whole_example_uncommented_is_a_valid_config(tmp_path: Path) -> None:
    whole = tmp_path / "committer.toml"
    whole.write_text("".join(settings_lines().values()))
    settings = load_settings(file_values=read_config_file(whole))
    assert settings.source_of("debounce") == "file"

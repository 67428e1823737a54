"""Each setting is declared once: its row makes the loader's parser, the commands' flags and the manual's table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from committer.cli import app, docs
from committer.cli.app import GROUPED, flag_parameter, flags_of
from committer.core import values
from committer.core.configfile import read_config_file
from committer.core.settings import NAMES, ROW, ROWS, Settings, load_settings
from committer.core.table import GROUPS, PLACE, rows, setting

# Options that are not settings: each belongs to one command and is declared there.
NOT_SETTINGS = {"config", "once", "new_branch", "from_remote", "adopt", "to", "dry_run", "message_text", "tag",
                "list_them", "as_json", "webhook_url", "max_count", "path", "target", "at", "output", "force", "from_",
                "in_history", "patch", "as_pr", "wait", "timeout"}


def cli_commands() -> dict[str, Any]:
    """Every command as typer built it (on its own copy of click); a group of its own (`fleet`) takes no
    settings from the table and is left out."""
    made = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    return {name: command for name, command in made.items() if not hasattr(command, "commands")}


def test_the_manual_s_table_is_the_one_the_settings_make() -> None:
    page = docs.PAGE.read_text(encoding="utf-8")
    assert docs.rewritten(page) == page, "docs/configuration.md is out of date: run python -m committer.cli.docs"
    for row in ROWS:
        assert f"| `{row.toml}` |" in page and f"`{row.env}`" in page


def test_every_setting_has_a_full_row() -> None:
    fields = [item.name for item in dataclasses.fields(Settings) if item.name not in ("sources", "config_file")]
    assert list(NAMES) == fields
    for row in ROWS:
        assert row.help and not row.help.endswith(".") and row.doc, row.name
        assert row.env == "COMMITTER_" + row.name.upper() and row.toml == row.name
        assert set(row.flags) <= {*GROUPS, *GROUPED}, row.name


PLAIN = [row.name for row in ROWS if " " not in row.shown and row.shown not in ("none", "off")]  # a value, not words


@pytest.mark.parametrize("name", PLAIN)
def test_the_default_shown_in_help_and_the_manual_reads_back_as_the_default(name: str) -> None:
    row = ROW[name]
    assert row.parse(name, row.shown) == row.default
    assert load_settings(env={row.env: row.shown}).source_of(name) == "env"


def test_a_toml_file_takes_every_setting_by_its_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("".join(f'{row.toml} = ""\n' for row in ROWS))
    assert set(read_config_file(path)) == set(NAMES)


def test_every_flag_of_every_command_comes_from_a_row() -> None:
    made = cli_commands()
    assert set(made) == set(GROUPED)
    all_flags = {row.flag for row in ROWS}
    for name, command in made.items():
        expected = {row.name for row in flags_of(name, GROUPED[name])}
        options = {param.name: param for param in command.params if param.param_type_name == "option"}
        assert expected <= set(options), (name, expected - set(options))
        for key, option in options.items():
            if key in ROW:
                assert key in expected, (name, key)
                assert option.opts == [ROW[key].flag] and option.help == ROW[key].label, (name, key)
            else:
                assert key in NOT_SETTINGS and not set(option.opts) & all_flags, (name, key)


def test_every_setting_is_a_flag_of_some_command() -> None:
    made = cli_commands()
    taken = {param.name for command in made.values() for param in command.params}
    assert [row.name for row in ROWS if row.name not in taken] == []
    run = {param.name for param in made["run"].params}
    assert set(NAMES) <= run  # the daemon takes every one
    for name, command in made.items():
        values = [param for param in command.params if param.param_type_name == "option" and not param.is_flag]
        assert all(param.metavar for param in values), (name, [p.name for p in values if not p.metavar])


def test_a_new_setting_is_one_row_that_the_parser_the_flags_and_the_manual_take() -> None:
    @dataclass(frozen=True)
    class More:
        colour: str = setting("blue", values.choice(("blue", "red")), flags=("paint",), help="Colour of the paint")
        coats: int = setting(2, values.positive_count, help="Coats of paint", doc="how many coats; at least 1")
        drying: float = setting(90.0, values.positive_duration, flags=(PLACE,), help="Drying time")

    table = rows(More)
    assert [row.name for row in table] == ["colour", "coats", "drying"]
    colour, coats, drying = table
    assert colour.parse("colour", "RED") == "red" and colour.env == "COMMITTER_COLOUR"
    assert drying.label == "Drying time [90s]." and coats.shown == "2"
    assert flags_of("paint", (), table) == (colour, drying) and flags_of("run", (), table) == (drying,)
    parameter = flag_parameter(colour)
    assert parameter.name == "colour" and parameter.default is None
    made = docs.table(table)
    assert "| `colour` | `--colour` (paint) | `COMMITTER_COLOUR` | `blue` | colour of the paint |" in made
    assert "| `coats` | | `COMMITTER_COATS` | `2` | how many coats; at least 1 |" in made

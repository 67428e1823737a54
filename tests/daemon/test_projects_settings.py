"""The per-project layout's settings: which folders are projects, each project's repository and remote,
and the one-line errors of settings that contradict each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from committer.core.errors import ConfigError
from committer.core.projectnames import valid_name
from committer.core.projects import chosen, for_project, narrowed, top_level
from committer.core.settings import load_settings
from tests.conftest import committer

TEMPLATE = "https://github.com/acme/{project}.git"


def per_project(**values: object) -> dict[str, str]:
    env = {"COMMITTER_LAYOUT": "per-project", "COMMITTER_GIT_DIR": "/srv/git", "COMMITTER_DATA_DIR": "/srv/data"}
    env.update({f"COMMITTER_{k.upper()}": str(v) for k, v in values.items()})
    return env


def test_a_project_has_its_folder_repository_and_remote_from_the_template() -> None:
    """`<data_dir>/<name>`, `<git_dir>/<name>.git`, the template with {project} replaced; one repository each."""
    settings = load_settings(env=per_project(remote_template=TEMPLATE))
    mine = for_project(settings, "notes")
    assert (mine.data_dir, mine.git_dir) == (Path("/srv/data/notes"), Path("/srv/git/notes.git"))
    assert mine.remote == "https://github.com/acme/notes.git"
    assert (mine.layout, mine.project, mine.http) == ("monorepo", "notes", "")
    assert narrowed(load_settings(env=per_project(project="site"))).git_dir == Path("/srv/git/site.git")
    assert narrowed(settings) is settings  # no project named: the whole folder


def test_include_and_exclude_choose_the_projects_and_exclusion_wins() -> None:
    """Globs on the folder's name: include (all when empty), then exclude."""
    settings = load_settings(env=per_project(projects_include="notes-*,site", projects_exclude="*-old"))
    assert [n for n in ("notes-a", "notes-old", "site", "other") if chosen(settings, n)] == ["notes-a", "site"]
    everything = load_settings(env=per_project(projects_exclude="tmp"))
    assert chosen(everything, "anything") and not chosen(everything, "tmp")


def test_project_names_are_folder_repository_and_url_names() -> None:
    """Letters, digits, '.', '_', '-'; never hidden, an option, a path or `*.git`."""
    assert all(valid_name(n) for n in ("notes", "a.b_c-d", "2026"))
    assert not any(valid_name(n) for n in (".hidden", "-x", "a b", "a/b", "x.git", "", "é", "a\nb"))


def test_top_level_splits_folders_from_files_and_leaves_hidden_names(tmp_path: Path) -> None:
    """The candidates: folders; the rest (files, links) are reported, hidden names neither."""
    for name in ("b", "a", ".trash"):
        (tmp_path / name).mkdir()
    (tmp_path / "loose.md").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    settings = load_settings(env={"COMMITTER_DATA_DIR": str(tmp_path), "COMMITTER_GIT_DIR": "/srv/git"})
    assert top_level(settings) == (["a", "b"], ["link", "loose.md"])


@pytest.mark.parametrize(("env", "setting", "words"), [
    ({"COMMITTER_REMOTE_TEMPLATE": "https://github.com/acme/notes.git"}, "COMMITTER_REMOTE_TEMPLATE", "{project}"),
    ({"COMMITTER_REMOTE_TEMPLATE": "-u{project}"}, "COMMITTER_REMOTE_TEMPLATE", "must not start with '-'"),
    ({"COMMITTER_LAYOUT": "flat"}, "COMMITTER_LAYOUT", "flat"),
])
def test_bad_layout_settings_are_one_line_naming_the_setting(env: dict[str, str], setting: str, words: str) -> None:
    """A template without {project}, or one that is not a remote once replaced; an unknown layout."""
    with pytest.raises(ConfigError) as raised:
        load_settings(env=env)
    assert raised.value.setting == setting and words in raised.value.message


def test_project_settings_that_contradict_the_layout_are_refused() -> None:
    """--project needs the per-project layout and a project's name; `remote` there is one remote for all."""
    with pytest.raises(ConfigError, match="only for layout per-project"):
        narrowed(load_settings(env={"COMMITTER_PROJECT": "notes"}))
    with pytest.raises(ConfigError, match="not a project name"):
        narrowed(load_settings(env=per_project(project="../x")))
    with pytest.raises(ConfigError, match="remote_template"):
        narrowed(load_settings(env=per_project(project="notes", remote="https://github.com/acme/all.git")))


@pytest.mark.integration
def test_commands_name_the_project_they_need(tmp_path: Path) -> None:
    """In the per-project layout a command that works on one repository asks for --project, exit 2."""
    (tmp_path / "data").mkdir()
    env = {"COMMITTER_LAYOUT": "per-project", "COMMITTER_DATA_DIR": str(tmp_path / "data"),
           "COMMITTER_GIT_DIR": str(tmp_path / "git")}
    for command in (["log"], ["init"], ["restore", "x.md", "--to", "yesterday"]):
        proc = committer(*command, env=env)
        assert proc.returncode == 2 and "--project NAME" in proc.stderr and "Traceback" not in proc.stderr, command
    assert not (tmp_path / "git").exists()  # init made no repository of the folder
    connect = committer("connect", "acme/notes", "--config", str(tmp_path / "c.toml"), env=env)
    assert connect.returncode == 2 and "remote_template" in connect.stderr and not (tmp_path / "c.toml").exists()
    bad = committer("log", "--project", "../up", env=env)
    assert bad.returncode == 2 and "not a project name" in bad.stderr


def test_a_command_typed_inside_a_project_folder_works_on_that_project(tmp_path: Path) -> None:
    """The current directory names the project when --project does not (never for `run`)."""
    settings = load_settings(env=per_project(data_dir=tmp_path))
    inside = narrowed(settings, tmp_path / "notes" / "sub")
    assert (inside.project, inside.git_dir) == ("notes", Path("/srv/git/notes.git"))
    assert narrowed(settings, tmp_path) is settings and narrowed(settings, Path("/elsewhere")) is settings
    assert narrowed(load_settings(env=per_project(data_dir=tmp_path, project="site")), tmp_path / "notes").project \
        == "site"

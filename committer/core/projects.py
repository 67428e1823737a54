"""A repository per project (`layout = per-project`): which top-level folders of the data directory are
projects, and the settings of one project's repository (its folder, `<git_dir>/<project>.git`, its remote
from `remote_template`). Pure apart from listing the data directory's top level."""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from pathlib import Path

from committer.core.errors import ConfigError
from committer.core.projectnames import MONOREPO, PER_PROJECT, PLACEHOLDER, valid_name
from committer.core.settings import Settings


def per_project(settings: Settings) -> bool:
    """Whether each top-level folder of the data directory is a repository of its own."""
    return settings.layout == PER_PROJECT


def chosen(settings: Settings, name: str) -> bool:
    """Whether the project is versioned: it matches `projects_include` (when given) and no `projects_exclude`."""
    if settings.projects_include and not any(fnmatch.fnmatchcase(name, g) for g in settings.projects_include):
        return False
    return not any(fnmatch.fnmatchcase(name, g) for g in settings.projects_exclude)


def top_level(settings: Settings) -> tuple[list[str], list[str]]:
    """(the folders, the other entries) directly in the data directory, sorted; hidden names left out."""
    folders: list[str] = []
    others: list[str] = []
    try:
        with os.scandir(settings.data_dir) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                (folders if entry.is_dir(follow_symlinks=False) else others).append(entry.name)
    except OSError:
        return [], []
    return sorted(folders), sorted(others)


def remote_for(settings: Settings, name: str) -> str:
    """The project's remote: `remote_template` with `{project}` replaced; empty without a template."""
    return settings.remote_template.replace(PLACEHOLDER, name) if settings.remote_template else ""


def for_project(settings: Settings, name: str) -> Settings:
    """The settings of one project's repository, as a one-repository daemon or command would have them."""
    return dataclasses.replace(
        settings, layout=MONOREPO, project=name, data_dir=settings.data_dir / name,
        git_dir=settings.git_dir / f"{name}.git", remote=remote_for(settings, name), http="",
    )


def narrowed(settings: Settings, cwd: Path | None = None) -> Settings:
    """A command's settings: with `project` set, or typed inside a project's folder (`cwd`), those of that
    project's repository (ConfigError when the layout is not per-project or the name is not a project's)."""
    if not settings.project and per_project(settings) and cwd is not None:
        inside = _project_of(settings.data_dir, cwd)
        if inside is not None:
            settings = dataclasses.replace(settings, project=inside)
    if not settings.project:
        return settings
    check_layout(settings)
    if not per_project(settings):
        raise ConfigError("project", "is only for layout per-project (each project folder its own repository)")
    if not valid_name(settings.project):
        raise ConfigError("project", f"{settings.project!r} is not a project name (letters, digits, '.', '_', '-')")
    return for_project(settings, settings.project)


def require_project(settings: Settings) -> None:
    """In the per-project layout, a command that works on one repository needs its project (exit 2)."""
    if per_project(settings):
        names = ", ".join(known(settings)) or "none yet"
        raise ConfigError("project", f"layout per-project: name the project with --project NAME ({names})")


def _project_of(data_dir: Path, cwd: Path) -> str | None:
    """The project folder `cwd` is in (or is), or None."""
    try:
        rel = cwd.resolve().relative_to(data_dir.resolve())
    except (OSError, ValueError):
        return None
    name = rel.parts[0] if rel.parts else ""
    return name if valid_name(name) else None


def known(settings: Settings) -> list[str]:
    """The projects that have a repository under the git dir folder, sorted."""
    try:
        names = [n.removesuffix(".git") for n in os.listdir(settings.git_dir) if n.endswith(".git")]
    except OSError:
        return []
    return sorted(n for n in names if valid_name(n))


def check_layout(settings: Settings) -> None:
    """Per-project settings that contradict each other: one line naming the setting."""
    if not per_project(settings):
        if settings.remote_template:
            raise ConfigError("remote-template", "is only for layout per-project; give remote instead")
        return
    if settings.remote:
        raise ConfigError("remote", "with layout per-project each project has its own remote: give remote_template "
                                    f"(https://github.com/acme/{PLACEHOLDER}.git) instead")


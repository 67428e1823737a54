"""Opening the repository for committing: created when missing, its settings re-applied, the branch it
keeps its history on respected, what a pass cut short left behind dropped."""

from __future__ import annotations

from committer.core import logs
from committer.core.errors import ConfigError
from committer.core.places import require_git_dir
from committer.core.settings import Settings
from committer.git import attributes, lfs
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from committer.policy.filters import PathFilter

log = logs.get("committer.git.setup")


def open_repository(
    settings: Settings, pfilter: PathFilter, new_branch: bool = False, runner: GitRunner | None = None
) -> GitRepo:
    """Create the repository when missing and (re)apply its settings; the data dir is untouched.

    A repository with history on another branch is not switched to `settings.branch` (its next commit
    would start an unrelated history there) unless `new_branch` says so: then the branch starts at the
    current head when it does not exist yet.
    """
    require_git_dir(settings)
    repo = GitRepo.of(settings, runner)
    if not repo.exists():
        repo.init()
        log.info("repo_created", git_dir=str(settings.git_dir), branch=settings.branch)
    else:
        check_branch(repo, new_branch, create=True)
        clear_staging(repo)
    repo.configure((settings.author_name, settings.author_email), pfilter.exclude_lines())
    neutralise(repo)
    pfilter.mirror_to(repo.bmignore_copy)
    if settings.lfs_threshold and lfs.available():
        lfs.prepare(repo)
    return repo


# Line endings are never converted, whatever an attribute or a global setting says (attributes: above).
_NEUTRAL_CONFIG = {"core.autocrlf": "false", "core.safecrlf": "false", "core.eol": "lf", "log.mailmap": "false"}


def neutralise(repo: GitRepo) -> None:
    """git reads nothing from the data directory for its own behaviour: the attributes it holds are
    overridden from info/attributes, and conversions are off in the repository's config; repaired at
    every start (a repository made by an older version, or edited by hand)."""
    if attributes.ensure(repo.git_dir):
        log.info("attributes_neutralised", path=str(repo.git_dir / "info" / "attributes"))
    current = repo.git("config", "--local", "--list", check=False).stdout.decode("utf-8", "replace")
    have = dict(line.split("=", 1) for line in current.splitlines() if "=" in line)
    for key, value in _NEUTRAL_CONFIG.items():
        if have.get(key.lower()) != value:
            repo.git("config", "--local", key, value)


def check_branch(repo: GitRepo, new_branch: bool, create: bool = False) -> None:
    """Refuse a branch other than the one the repository keeps its history on, unless `new_branch`;
    with `create`, start the new branch at that history's head."""
    current = repo.current_branch() if repo.exists() else None
    if current is None or current == repo.branch:
        return
    head = repo.resolve(f"refs/heads/{current}")
    if head is None:
        return  # the branch it named has no commits: nothing to keep apart
    if not new_branch:
        raise ConfigError(
            "branch",
            f"the repository {repo.git_dir} keeps its history on {current!r}; committing to {repo.branch!r} "
            f"would start a second history there. Use --branch {current}, or pass --new-branch to start "
            f"{repo.branch!r} from the head of {current!r}",
        )
    if create and repo.head() is None:
        repo.git("update-ref", "-m", f"committer: new branch from {current}", repo.ref, head, "0" * 40)
        log.info("branch_created", branch=repo.branch, start=head, source=current)


STAGING_REF = "refs/committer/staging"


def clear_staging(repo: GitRepo) -> None:
    """Drop the staging ref (a pass cut short leaves it: its commits were never on the branch)."""
    if repo.resolve(STAGING_REF) is not None:
        repo.git("update-ref", "-d", STAGING_REF, check=False)

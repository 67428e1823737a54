"""committer connect OWNER/REPO: the private GitHub repository, its push webhook, and the settings to use them.

Every step first reads what is there and changes only what is missing or wrong, so running it again
changes nothing that is right.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from committer.core import logs
from committer.core.errors import CommitterError, ConfigError
from committer.core.secret import webhook_secret
from committer.core.settings import Settings
from committer.core.values import remote_problem
from committer.sync import github
from committer.sync.credentials import TOKEN_USER, read_token
from committer.sync.errors import PushError

log = logs.get("committer.connect")

_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/([A-Za-z0-9._-]{1,100})$")
SECRET_FILE_NAME = "webhook_secret"
# Settings `connect` writes when they were given as flags or in the environment.
CARRIED = ("github_app_id", "github_app_installation_id", "github_app_private_key_file", "github_api_url",
           "token_file", "branch")


def parse_target(text: str) -> tuple[str, str]:
    """OWNER/REPO, as GitHub spells names; anything else is a one-line error."""
    match = _NAME.match(text.strip().removesuffix(".git"))
    if match is None or match.group(2) in (".", ".."):
        raise ConfigError("OWNER/REPO", f"expected a GitHub repository such as acme/notes, got {text!r}")
    return match.group(1), match.group(2)


def _auth(settings: Settings) -> dict[str, Any]:
    if settings.github_app_id:
        return {"bearer": github.app_tokens(settings).token()}
    token = read_token(settings)
    if not token:
        raise ConfigError(
            "token", "connect needs a token (COMMITTER_TOKEN, token_file or the systemd credential `token`) "
            "or a GitHub App (github_app_id, github_app_installation_id, github_app_private_key_file)"
        )
    return github.api_auth((TOKEN_USER, token))


def _call(settings: Settings, method: str, path: str, what: str, **kwargs: Any) -> Any:
    response = github.request(settings, method, path, what=what, **_auth(settings), **kwargs)
    if response.status_code >= 300 and not (response.status_code == 404 and method == "GET"):
        raise github.failure(response, what)
    return None if response.status_code == 404 else response.json()


def ensure_repository(settings: Settings, owner: str, name: str) -> tuple[dict[str, Any], bool]:
    """The repository, created private when missing: (its JSON, whether it was created now)."""
    repo = _call(settings, "GET", f"/repos/{owner}/{name}", "read the repository")
    created = False
    if repo is None:
        kind = (_call(settings, "GET", f"/users/{owner}", "look up the owner") or {}).get("type")
        if kind is None:
            raise CommitterError(f"{owner} is neither a GitHub user nor an organisation")
        path = f"/orgs/{owner}/repos" if kind == "Organization" else "/user/repos"
        body = {"name": name, "private": True, "auto_init": False, "has_issues": False, "has_wiki": False,
                "has_projects": False, "description": "Versioned backup kept by committer"}
        repo = _call(settings, "POST", path, f"create {owner}/{name}", body=body)
        created = True
        log.info("github_repo_created", repository=f"{owner}/{name}")
    if repo.get("private") is not True and not settings.allow_public:
        raise CommitterError(
            f"{owner}/{name} is public on GitHub: committer does not push a private knowledge base to it; "
            "make it private (Settings > General > Danger Zone) or set allow_public = true"
        )
    return repo, created


def clone_url(repo: Mapping[str, Any], owner: str, name: str) -> str:
    """The API's `clone_url` for the repository, checked as strictly as a configured remote: an https URL
    git cannot read as an option, on one plain host; anything else is refused before it is written."""
    url: object = repo.get("clone_url")
    if url is None:
        return f"https://github.com/{owner}/{name}.git"
    if not isinstance(url, str):
        problem: str | None = "it is not a string"
    elif not url.lower().startswith("https://"):
        problem = "it is not an https URL"
    else:
        problem = remote_problem(url)
    if problem is not None or not isinstance(url, str):
        raise CommitterError(f"connect {owner}/{name}: the API answered a clone_url committer does not use: "
                             f"{problem}; nothing was written")
    return url


def ensure_webhook(settings: Settings, owner: str, name: str, url: str, secret_file: Path) -> str:
    """The push webhook to `url` with the secret of `secret_file` (generated when missing); what was done."""
    secret = webhook_secret(secret_file, environ={})
    hooks = _call(settings, "GET", f"/repos/{owner}/{name}/hooks", "list the webhooks") or []
    hook = next((h for h in hooks if (h.get("config") or {}).get("url") == url), None)
    right = hook is not None and hook.get("active") and "push" in (hook.get("events") or [])
    if right and secret:
        return "unchanged"
    if not secret:
        secret = secrets.token_hex(32)
        write_private(secret_file, secret + "\n")
    config = {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
    logs.register_secret(secret)
    if hook is None:
        body = {"name": "web", "active": True, "events": ["push"], "config": config}
        _call(settings, "POST", f"/repos/{owner}/{name}/hooks", "create the webhook", body=body)
        return "created"
    _call(settings, "PATCH", f"/repos/{owner}/{name}/hooks/{hook['id']}", "update the webhook",
          body={"active": True, "events": ["push"], "config": config})
    return "updated"


def write_private(path: Path, text: str) -> None:
    """Write a secret file with mode 0600 from its first byte, replacing any older one atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def update_config(path: Path, values: Mapping[str, object]) -> list[str]:
    """Set these keys in the TOML file (top level or [committer]), keeping every other line; the keys changed."""
    text = path.read_text() if path.exists() else ""
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    table = parsed.get("committer", parsed)
    current = {key.replace("-", "_"): value for key, value in table.items()}
    changed = [key for key, value in values.items() if current.get(key) != value]
    if not changed:
        return []
    lines = text.splitlines()
    header = next((n for n, line in enumerate(lines) if line.strip() == "[committer]"), None)
    start = 0 if header is None else header + 1
    end = next((n for n in range(start, len(lines)) if lines[n].lstrip().startswith("[")), len(lines))
    for key in changed:
        line = f"{key} = {_toml_value(values[key])}"
        pattern = re.compile(rf"^\s*{key.replace('_', '[-_]')}\s*=")
        found = next((n for n in range(start, end) if pattern.match(lines[n])), None)
        if found is not None:
            lines[found] = line
        else:
            lines.insert(end if header is not None else start, line)
            end += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(temp, mode)
    os.replace(temp, path)
    return changed


def connect(settings: Settings, target: str, config_file: Path, webhook_url: str | None) -> list[str]:
    """Create or find the repository, register the webhook, write the settings; lines saying what was done."""
    owner, name = parse_target(target)
    done: list[str] = []
    try:
        repo, created = ensure_repository(settings, owner, name)
        done.append(f"repository {owner}/{name}: {'created (private)' if created else 'exists (private)'}")
        values: dict[str, object] = {}
        remote_matches = bool(settings.remote) and github.repository(settings) == (owner, name)
        # Checked before anything is written (webhook, secret, config): the next git call would run it.
        values["remote"] = settings.remote if remote_matches else clone_url(repo, owner, name)
        for key in CARRIED:
            if settings.source_of(key) in ("flag", "env"):
                value = getattr(settings, key)
                values[key] = str(value) if isinstance(value, Path) else value
        if webhook_url:
            secret_file = settings.webhook_secret_file or config_file.parent / SECRET_FILE_NAME
            values["webhook_secret_file"] = str(secret_file)
            outcome = ensure_webhook(settings, owner, name, webhook_url, secret_file)
            done.append(f"webhook {webhook_url}: {outcome} (secret in {secret_file}, mode 0600)")
    except PushError as exc:
        raise CommitterError(f"connect {owner}/{name}: {exc.kind}: {exc.detail}") from None
    changed = update_config(config_file, values)
    done.append(f"config {config_file}: " + (f"set {', '.join(changed)}" if changed else "unchanged"))
    return done

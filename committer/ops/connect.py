"""committer connect OWNER/REPO: the private repository on the remote's forge (GitHub unless the remote
says otherwise), its push webhook, and the settings to use them.

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

from committer.core import logs
from committer.core.errors import CommitterError, ConfigError
from committer.core.secret import webhook_secret
from committer.core.settings import Settings
from committer.core.values import remote_problem
from committer.sync.errors import PushError
from committer.sync.forge import Forge, Repository
from committer.sync.forges import forge_to_create

log = logs.get("committer.connect")

_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/([A-Za-z0-9._-]{1,100})$")
SECRET_FILE_NAME = "webhook_secret"
# Settings `connect` writes when they were given as flags or in the environment.
CARRIED = ("github_app_id", "github_app_installation_id", "github_app_private_key_file", "github_api_url",
           "token_file", "branch")


def parse_target(text: str) -> tuple[str, str]:
    """OWNER/REPO, spelled as forges allow names; anything else is a one-line error."""
    match = _NAME.match(text.strip().removesuffix(".git"))
    if match is None or match.group(2) in (".", ".."):
        raise ConfigError("OWNER/REPO", f"expected a GitHub repository such as acme/notes, got {text!r}")
    return match.group(1), match.group(2)


def ensure_repository(forge: Forge, owner: str, name: str, allow_public: bool) -> Repository:
    """The repository, created private when missing; refused when it is public (unless allow_public)."""
    repo = forge.create_repository(owner, name)
    if not repo.private and not allow_public:
        raise CommitterError(
            f"{owner}/{name} is public on {forge.title}: committer does not push a private knowledge base to it; "
            f"make it private ({forge.make_private}) or set allow_public = true"
        )
    return repo


def clone_url(url: object, owner: str, name: str) -> str:
    """The host's clone URL for the repository, checked as strictly as a configured remote: an https URL
    git cannot read as an option, on one plain host; anything else is refused before it is written."""
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


def ensure_webhook(forge: Forge, owner: str, name: str, url: str, secret_file: Path) -> str:
    """The push webhook to `url` with the secret of `secret_file` (generated when missing); what was done."""

    def new_secret() -> str:
        made = secrets.token_hex(32)
        write_private(secret_file, made + "\n")
        return made

    return forge.register_webhook(owner, name, url, webhook_secret(secret_file, environ={}), new_secret)


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
    forge = forge_to_create(settings)
    done: list[str] = []
    try:
        repo = ensure_repository(forge, owner, name, settings.allow_public)
        done.append(f"repository {owner}/{name}: {'created (private)' if repo.created else 'exists (private)'}")
        values: dict[str, object] = {}
        remote_matches = bool(settings.remote) and forge.repository() == (owner, name)
        # Checked before anything is written (webhook, secret, config): the next git call would run it.
        values["remote"] = settings.remote if remote_matches else clone_url(repo.clone_url, owner, name)
        for key in CARRIED:
            if settings.source_of(key) in ("flag", "env"):
                value = getattr(settings, key)
                values[key] = str(value) if isinstance(value, Path) else value
        if webhook_url:
            secret_file = settings.webhook_secret_file or config_file.parent / SECRET_FILE_NAME
            values["webhook_secret_file"] = str(secret_file)
            outcome = ensure_webhook(forge, owner, name, webhook_url, secret_file)
            done.append(f"webhook {webhook_url}: {outcome} (secret in {secret_file}, mode 0600)")
    except PushError as exc:
        if exc.kind == "credential_file":  # a setting's mistake, as a missing token is: exit 2
            raise ConfigError("token-file", f"{exc.detail}; nothing was changed") from None
        raise CommitterError(f"connect {owner}/{name}: {exc.kind}: {exc.detail}") from None
    changed = update_config(config_file, values)
    done.append(f"config {config_file}: " + (f"set {', '.join(changed)}" if changed else "unchanged"))
    return done

"""Expected failures, each with the exit code the CLI maps it to."""

from __future__ import annotations

import re

# user:password@ in URLs, and anything that looks like an Authorization header value.
# The scheme is bounded: unbounded, a long run of letters cost time in the square of its length.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{0,31}://)[^/@\s]+@")
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*(?:basic|bearer|token)\s+)\S+")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove credentials from text that may be shown to a person or logged."""
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    text = _AUTH_HEADER.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class CommitterError(Exception):
    """A failure we expected and can explain in one line."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(CommitterError):
    """A bad setting, flag or config file: the user must change something."""

    exit_code = 2

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


class LockError(CommitterError):
    """Another daemon holds the repository."""

    exit_code = 3


class GitError(CommitterError):
    """A git command failed; carries what an operator needs, secrets removed."""

    def __init__(self, cmd: list[str], returncode: int, stderr: str) -> None:
        self.cmd = [redact(part) for part in cmd]
        self.returncode = returncode
        self.stderr = redact(stderr.strip())
        first = self.stderr.splitlines()[-1] if self.stderr else "no message"
        shown = " ".join(self.cmd[:3])
        super().__init__(f"git {shown} failed (exit {returncode}): {first}")

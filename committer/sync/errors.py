"""What a push or fetch failure means: classified once (transient, or permanent with its kind), with the
host's message, credentials removed."""

from __future__ import annotations

import re
from collections.abc import Mapping

from committer.core.errors import CommitterError, redact

HINTS = {
    "transient": "the remote or the network is unavailable; retrying with backoff",
    "auth": "check the token (COMMITTER_TOKEN, token_file or the systemd credential), the GitHub App "
    "(its id, installation and private key) or the SSH key",
    "not_found": "check the remote URL, and that the token may write to that repository",
    "non_fast_forward": "the remote has commits this repository lacks; run `committer pull`, "
    "or set allow_non_ff to overwrite them",
    "rejected": "the host refused the push; read its message",
    "too_large": "a file or the push is over the host's size or LFS quota; remove it from history or use LFS",
    "push_protection": "the host found a secret in a commit; remove it from history and rotate the secret",
    "protected_branch": "the branch is protected on the host; allow this token to push or use another branch",
    "public_repository": "make the repository private (pushing resumes by itself), or set allow_public = true",
    "remote_diverged": "someone moved the remote branch back or rewrote it; nothing is pushed over it: "
    "push the missing commits back by hand, or take the remote's history (see docs/pulling.md)",
    "transfer_limit": "the remote sent more, or took longer, than max_transfer or transfer_timeout allow; a "
    "broken or hostile server, or a repository that needs larger limits; retrying with backoff",
    "credential_file": "a file a setting names for a credential cannot be read; fix the file or the setting",
    "unknown": "see the message; retrying with backoff",
}


KINDS = tuple(HINTS)


PERMANENT = frozenset(KINDS) - {"transient", "unknown", "transfer_limit"}


# Checked in order: host rejections name their cause more precisely than git's own lines.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("push_protection", r"GH013|push protection|secret scanning|cannot contain secrets"),
        (
            "too_large",
            r"GH001|file size limit|large files detected|HTTP 413|returned error: 413|over its data quota|"
            r"LFS budget|exceeded .*LFS|pack exceeds maximum allowed size",
        ),
        ("protected_branch", r"GH006|protected branch"),
        ("rejected", r"GH007|private email|email privacy"),
        (
            "not_found",
            r"repository not found|repository '[^']*' not found|does not appear to be a git repository|"
            r"permission to \S+ denied|write access to repository not granted|returned error: 404",
        ),
        (
            "auth",
            r"authentication failed|could not read (username|password)|returned error: 40[13]|"
            r"invalid username or password|invalid credentials|bad credentials|permission denied \(|"
            r"host key verification failed|terminal prompts disabled",
        ),
        (
            "non_fast_forward",
            r"\[rejected\] \((fetch first|non-fast-forward|stale info)\)|"
            r"updates were rejected because the (tip|remote contains)",
        ),
        (
            "transient",
            r"could not resolve|connection refused|couldn't connect|failed to connect|connection reset|"
            r"timed out|operation too slow|returned error: (5\d\d|429)|HTTP (5\d\d|429)|"
            r"remote end hung up|RPC failed|early EOF|unexpected disconnect|cannot lock ref|"
            r"unable to create '[^']*\.lock'|network is unreachable|no route to host|"
            r"temporary failure|try again later|service unavailable",
        ),
        ("rejected", r"\[remote rejected\]|\[rejected\]|hook declined"),
    )
)


_PORCELAIN = re.compile(r"^([ +\-*=!])\t([^\t]*):([^\t]*)\t(.*)$")


_NOISE = re.compile(
    r"^(hint:|To |Done$|error: failed to push some refs|Please make sure you have|"
    r"and the repository exists|Everything up-to-date)"
)


_MESSAGE_MAX = 800


class PushError(CommitterError):
    """A push or fetch the remote did not accept, classified once for retry decisions and status."""

    def __init__(self, kind: str, detail: str, action: str = "push") -> None:
        assert kind in KINDS, kind
        self.kind = kind
        self.detail = detail
        hint = HINTS[kind] if action == "push" else HINTS[kind].replace("; retrying with backoff", "")
        super().__init__(f"{action} failed ({kind}): {detail} ({hint})")

    @property
    def permanent(self) -> bool:
        """Retrying soon will not help: a person must change something."""
        return self.kind in PERMANENT


def porcelain(stdout: str) -> dict[str, tuple[str, str]]:
    """Ref lines of `git push --porcelain`: destination ref -> (flag, summary)."""
    found = {}
    for line in stdout.splitlines():
        match = _PORCELAIN.match(line)
        if match:
            found[match.group(3)] = (match.group(1), match.group(4))
    return found


def classify(
    returncode: int, stderr: str, stdout: str, *, ref: str | None = None, secrets: tuple[str, ...] = ()
) -> PushError | None:
    """None when git succeeded (and, given `ref`, its porcelain line says so); else the classified error."""
    lines = porcelain(stdout)
    rejected = {dst: summary for dst, (flag, summary) in lines.items() if flag == "!"}
    if returncode == 0 and not rejected and (ref is None or ref in lines):
        return None
    detail = _detail(returncode, stderr, rejected, secrets)
    if returncode < 0:
        return PushError("transient", detail)
    text = stderr + "\n" + "\n".join(rejected.values())
    for kind, pattern in _RULES:
        if pattern.search(text):
            return PushError(kind, detail)
    return PushError("unknown", detail)


def _detail(returncode: int, stderr: str, rejected: Mapping[str, str], secrets: tuple[str, ...]) -> str:
    parts = [f"{dst}: {summary}" for dst, summary in rejected.items()]
    for raw in stderr.splitlines():
        line = raw.strip()
        if line.startswith("remote:"):
            line = line[len("remote:") :].strip()
        if line and not _NOISE.match(line) and line not in parts:
            parts.append(line)
    if returncode < 0:
        parts.append(f"git was stopped by signal {-returncode}")
    text = "; ".join(parts) or f"git exited with code {returncode} and no message"
    text = redact(text, secrets)
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def timeout_error(seconds: float) -> PushError:
    """The error for a call cut off because it stopped making progress (or at a stop's deadline)."""
    return PushError("transient", f"the remote stopped answering: git was idle past push_timeout and was stopped "
                                  f"after {seconds:.1f}s")


def limit_error(limit: str, seconds: float, stored: int, action: str = "push") -> PushError:
    """The error for a call stopped at transfer_timeout or max_transfer (an endless pack or LFS body)."""
    if limit == "max_transfer":
        what = f"the transfer wrote {stored / 1e6:.1f} MB, past max_transfer, and was stopped after {seconds:.1f}s"
    else:
        what = f"the transfer ran past transfer_timeout and was stopped after {seconds:.1f}s"
    return PushError("transfer_limit", what + "; what it left was removed", action)

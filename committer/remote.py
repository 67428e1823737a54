"""Talking to the remote: credentials, one deadline-bound git network call, and what its answer means."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from committer import logs
from committer.errors import CommitterError, redact
from committer.gitrepo import GitRepo, git_argv, git_env
from committer.settings import DEFAULT_GITHUB_API, Settings

if TYPE_CHECKING:
    from committer.github import AppTokens

log = logs.get("committer.remote")

TOKEN_ENV = "COMMITTER_TOKEN"
TOKEN_USER = "x-access-token"
# The credential reaches git as two variables of the git process's own environment, read by a credential
# helper that git (and git-lfs, through `git credential fill`) runs only for the remote's origin.
USER_ENV = "COMMITTER_GIT_USER"
PASSWORD_ENV = "COMMITTER_GIT_PASSWORD"
HELPER = (
    "!f() { test \"$1\" = get && printf 'username=%s\\npassword=%s\\n' "
    "\"$COMMITTER_GIT_USER\" \"$COMMITTER_GIT_PASSWORD\"; }; f"
)
PUSHED_PREFIX = "refs/committer/pushed/"
PUSHED_TAGS_PREFIX = "refs/committer/pushed-tags/"
FETCHED_PREFIX = "refs/committer/remote/"

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
    "push the missing commits back by hand, or take the remote's history (see Pulling in the README)",
    "unknown": "see the message; retrying with backoff",
}
KINDS = tuple(HINTS)
PERMANENT = frozenset(KINDS) - {"transient", "unknown"}

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


def read_token(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """The HTTPS token: COMMITTER_TOKEN, else token_file (read now), else $CREDENTIALS_DIRECTORY/token."""
    env = os.environ if environ is None else environ
    if env.get(TOKEN_ENV, "").strip():
        return env[TOKEN_ENV].strip()
    path: Path | None = settings.token_file
    if path is None and env.get("CREDENTIALS_DIRECTORY"):
        candidate = Path(env["CREDENTIALS_DIRECTORY"]) / "token"
        try:
            path = candidate if candidate.is_file() else None
        except OSError:  # a credentials directory this user may not read: reading it below says so
            path = candidate
    if path is None:
        return None
    try:
        return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError) as exc:
        raise PushError("auth", f"cannot read the token file {path}: {exc.__class__.__name__}") from None


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """An http(s) URL without its user:password part, and that part; other URLs are left alone."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(password))


def remote_path(settings: Settings) -> tuple[str, str] | None:
    """(host, path) of the remote URL, scp-like ssh included; None for local paths."""
    url = split_credentials(settings.remote)[0]
    if "://" in url:
        parts = urlsplit(url)
        return (parts.hostname or "").lower(), parts.path
    if ":" in url and not url.startswith("/"):  # scp-like: git@github.com:owner/repo.git
        address, _, path = url.partition(":")
        return address.rpartition("@")[2].lower(), path
    return None


def api_url_set(settings: Settings) -> bool:
    """Whether github_api_url was given (GitHub Enterprise, or a stand-in): its remote is then GitHub's."""
    return settings.github_api_url != DEFAULT_GITHUB_API or settings.source_of("github_api_url") != "default"


def on_github(settings: Settings) -> bool:
    """Whether the remote is GitHub's, so the visibility rule applies (no network, no import of the REST client)."""
    found = remote_path(settings)
    return found is not None and (found[0] == "github.com" or api_url_set(settings))


def basic_header(user: str, password: str) -> str:
    """The Authorization header GitHub accepts for a token: Basic base64(user:password)."""
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def origin(url: str) -> str:
    """scheme://host[:port] of an http(s) URL, without credentials or path: what a credential is scoped to."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()
    return f"{parts.scheme.lower()}://{host}"


def helper_config(url: str) -> dict[str, str]:
    """Git config that answers credential requests for `url`'s origin only, from the process environment.

    The empty `credential.helper` first drops any helper configured before (git reads command-scope
    config last); the scoped helper is then the only one, and git asks it only for this origin, so a
    redirect to another host or an LFS storage host never gets the credential.
    """
    return {"credential.helper": "", f"credential.{origin(url)}.helper": HELPER}


@dataclass(frozen=True)
class NetResult:
    """What one network git call left behind."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    secrets: tuple[str, ...]


class Remote:
    """The configured remote: a URL safe for argv, a redacted form to show, and calls with deadlines."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url, self._userinfo = split_credentials(settings.remote)
        self.shown = redact(settings.remote)
        self.is_http = urlsplit(self.url).scheme.lower() in ("http", "https")
        self.app: AppTokens | None = None
        if self.is_http and settings.github_app_id:
            from committer.github import app_tokens  # the App's REST client, only for those who use one

            self.app = app_tokens(settings)

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) for the remote's host, read now: an App token, the token, or the URL's own."""
        if not self.is_http:
            return None
        if self.app is not None:
            return TOKEN_USER, self.app.token()
        token = read_token(self.settings)
        if token:
            return TOKEN_USER, token
        return self._userinfo if self._userinfo and any(self._userinfo) else None

    def env(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """Environment for one network git process, and the secrets it holds; the credential is re-read."""
        config: dict[str, str] = {}
        secrets: tuple[str, ...] = ()
        found = self.credentials()
        env = git_env({"GIT_TERMINAL_PROMPT": "0"})
        for name in ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_CONFIG_PARAMETERS", TOKEN_ENV, USER_ENV, PASSWORD_ENV):
            env.pop(name, None)
        if found is not None:
            user, password = found
            encoded = basic_header(user, password).split()[-1]
            # Short values would blank out ordinary words in logs; tokens and their encoded form are long.
            secrets = tuple(s for s in (password, encoded) if len(s) >= 6)
            config.update(helper_config(self.url))
            env[USER_ENV], env[PASSWORD_ENV] = user, password
        for secret in secrets:
            logs.register_secret(secret)
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config.items()):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        if self.settings.git_ssh_command:
            env["GIT_SSH_COMMAND"] = self.settings.git_ssh_command
        return env, secrets

    def run(
        self,
        repo: GitRepo,
        args: list[str],
        *,
        timeout: float | None = None,
        track: Callable[[subprocess.Popen[bytes] | None], None] | None = None,
    ) -> NetResult:
        """Run one git network command; past `timeout` its whole process group is killed.

        With a GitHub App, a refusal of the credentials means the installation token was revoked or
        expired early: a new one is minted at once and the command runs again, once.
        """
        timeout = self.settings.push_timeout if timeout is None else max(timeout, 0.1)
        result = self._run_once(repo, args, timeout, track)
        if self.app is not None and not result.timed_out:
            error = classify(result.returncode, result.stderr, result.stdout)
            if error is not None and error.kind == "auth":
                log.info("github_token_refused", action="minting a new installation token")
                self.app.invalidate()
                again = self._run_once(repo, args, timeout, track)
                return dataclasses.replace(again, seconds=again.seconds + result.seconds)
        return result

    def _run_once(
        self,
        repo: GitRepo,
        args: list[str],
        timeout: float,
        track: Callable[[subprocess.Popen[bytes] | None], None] | None,
    ) -> NetResult:
        stall = max(1, min(60, int(timeout / 2)))
        limits = ["-c", "http.lowSpeedLimit=1000", "-c", f"http.lowSpeedTime={stall}"]
        argv = git_argv(repo.git_dir, [*limits, *args])
        env, secrets = self.env()
        start = time.monotonic()
        try:
            # A session of its own, so a timeout kills git-remote-http or ssh along with git.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise PushError("unknown", f"cannot run git: {exc.strerror}") from None
        if track:
            track(proc)
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc)
            out, err = proc.communicate()
        finally:
            if track:
                track(None)
        return NetResult(
            proc.returncode,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            time.monotonic() - start,
            timed_out,
            secrets,
        )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a network git and every process it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def timeout_error(seconds: float) -> PushError:
    """The error for a call cut off by its deadline."""
    return PushError("transient", f"no answer from the remote within {seconds:.1f}s; git was stopped")


def raise_for(result: NetResult, action: str = "push") -> None:
    """Raise the classified PushError of a network call that failed or ran out of time."""
    if result.timed_out:
        raise timeout_error(result.seconds)
    error = classify(result.returncode, result.stderr, result.stdout, secrets=result.secrets)
    if error:
        raise PushError(error.kind, error.detail, action) if action != "push" else error


def remote_key(url: str) -> str:
    """A short name for one remote (its URL without credentials): what was pushed is kept per remote."""
    return hashlib.sha1(split_credentials(url)[0].encode(), usedforsecurity=False).hexdigest()[:12]


def pushed_ref(url: str, branch: str) -> str:
    """The private ref that holds what `url` has of `branch`."""
    return f"{PUSHED_PREFIX}{remote_key(url)}/{branch}"


def pushed_tags_prefix(url: str) -> str:
    """Where the tags `url` has are remembered."""
    return f"{PUSHED_TAGS_PREFIX}{remote_key(url)}/"


def record_pushed(
    repo: GitRepo, url: str, branch_sha: str | None, tags: Mapping[str, str], note: str
) -> None:
    """Remember what the remote has: the private refs pending commits are counted against."""
    lines = [f"update {pushed_ref(url, repo.branch)} {branch_sha}\n"] if branch_sha else []
    lines += [f"update {pushed_tags_prefix(url)}{name} {sha}\n" for name, sha in tags.items()]
    if lines:
        repo.git("update-ref", "--create-reflog", "-m", note, "--stdin", input="".join(lines).encode())


def local_tags(repo: GitRepo) -> dict[str, str]:
    """Tag name -> object id of every tag in the repository."""
    out = repo.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/tags/").stdout.decode()
    return {ref[len("refs/tags/") :]: sha for sha, ref in (line.split(" ", 1) for line in out.splitlines())}


def remote_has_history(settings: Settings, repo: GitRepo) -> bool:
    """Whether the remote already has our branch (an empty remote simply receives the first push)."""
    remote = Remote(settings)
    result = remote.run(repo, ["ls-remote", "--heads", remote.url, repo.ref])
    raise_for(result, "remote check")
    return bool(result.stdout.strip())


def fetch_remote_head(
    settings: Settings, repo: GitRepo, *, tags: bool = False,
    track: Callable[[subprocess.Popen[bytes] | None], None] | None = None,
) -> str | None:
    """Fetch the remote's branch into refs/committer/remote/<branch>; its commit id, or None if absent."""
    remote = Remote(settings)
    target = f"{FETCHED_PREFIX}{repo.branch}"
    refspecs = [f"+{repo.ref}:{target}"] + (["refs/tags/*:refs/tags/*"] if tags else [])
    args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote.url, *refspecs]
    result = remote.run(repo, args, track=track)
    if result.returncode != 0 and "couldn't find remote ref" in result.stderr:
        return None
    raise_for(result, "fetch")
    sha = repo.git("rev-parse", "-q", "--verify", f"{target}^{{commit}}").stdout.decode().strip()
    return sha or None


def fetch_lfs_objects(settings: Settings, repo: GitRepo, rev: str) -> None:
    """Download the LFS objects of `rev`'s tree from the remote into the repository's LFS store."""
    remote = Remote(settings)
    raise_for(remote.run(repo, ["lfs", "fetch", remote.url, rev]), "LFS fetch")


def refetch_remote_head(settings: Settings, repo: GitRepo) -> str | None:
    """Fetch the remote branch with every object, as a fresh clone would (to heal missing objects)."""
    remote = Remote(settings)
    target = f"{FETCHED_PREFIX}{repo.branch}"
    args = ["fetch", "--refetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote.url, f"+{repo.ref}:{target}"]
    raise_for(remote.run(repo, args), "fetch")
    return target


def init_from_remote(settings: Settings, repo: GitRepo) -> str:
    """Take the remote's history and check its files out into the empty data directory."""
    data = repo.data_dir
    if data.exists() and any(data.iterdir()):
        raise CommitterError(
            f"{data} is not empty: --from-remote only checks files out into an empty directory; "
            "move its content away first, or use --adopt to commit it on top of the remote history"
        )
    if not repo.exists():
        repo.init()
    sha = fetch_remote_head(settings, repo, tags=True)
    if sha is None:
        raise CommitterError(f"the remote {redact(settings.remote)} has no branch {repo.branch!r} to take")
    local = repo.head()
    if local not in (None, sha):
        raise CommitterError(
            f"{repo.git_dir} already has its own history on {repo.branch!r}; start from an empty git dir"
        )
    data.mkdir(parents=True, exist_ok=True)
    repo.git("update-ref", "-m", "committer: init from remote", repo.ref, sha)
    record_pushed(repo, settings.remote, sha, local_tags(repo), "committer: init from remote")
    repo.git("read-tree", "--reset", "-u", sha, work_tree=True)
    log.info("init_from_remote", remote=redact(settings.remote), head=sha)
    return sha


def adopt_remote(settings: Settings, repo: GitRepo) -> str | None:
    """Put our branch on the remote's history, data directory untouched; None when the remote is empty."""
    if not repo.exists():
        repo.init()
    sha = fetch_remote_head(settings, repo, tags=True)
    if sha is None:
        return None
    old = repo.head()
    repo.git("update-ref", "-m", "committer: adopt remote history", repo.ref, sha)
    record_pushed(repo, settings.remote, sha, local_tags(repo), "committer: adopt remote history")
    # The index now describes the remote's tree, so the next reconcile commits the local content on top.
    repo.sync_index()
    log.info("adopt_remote", remote=redact(settings.remote), head=sha, replaced=old)
    return sha

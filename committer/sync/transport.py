"""Talking to the remote: credentials, one deadline-bound git network call, and what its answer means."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from committer.core import logs
from committer.core.errors import ConfigError, GitError, redact
from committer.core.progress import OnStep
from committer.core.progress import display as shown_progress
from committer.core.settings import Settings
from committer.core.values import remote_problem
from committer.git import leftovers, lfs
from committer.git.activity import Quiet
from committer.git.repo import GitRepo
from committer.git.runner import drain, git_argv, git_env, kill_group
from committer.sync import gitprogress
from committer.sync.credentials import (
    PASSWORD_ENV,
    TOKEN_ENV,
    USER_ENV,
    basic_header,
    helper_config,
    split_credentials,
)
from committer.sync.errors import PushError, classify, limit_error, timeout_error
from committer.sync.forge import Forge
from committer.sync.forges import forge_for

log = logs.get("committer.remote")


@dataclass(frozen=True)
class NetResult:
    """What one network git call left behind."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    secrets: tuple[str, ...]
    stopped: str = ""  # why it was killed: "idle", "deadline", "transfer_timeout" or "max_transfer"
    stored: int = 0  # bytes its processes wrote to storage
    forge: Forge | None = dataclasses.field(default=None, compare=False, repr=False)  # what classifies it


class Remote:
    """The configured remote: a URL safe for argv, a redacted form to show, and calls with deadlines."""

    def __init__(self, settings: Settings, forge: Forge | None = None) -> None:
        problem = remote_problem(settings.remote) if settings.remote else None
        if problem is not None:  # settings made without load_settings are checked here too
            raise ConfigError("remote", problem)
        self.settings = settings
        self.url, self._userinfo = split_credentials(settings.remote)
        self.shown = redact(settings.remote)
        self.is_http = urlsplit(self.url).scheme.lower() in ("http", "https")
        self.forge = forge_for(settings) if forge is None else forge

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) for the remote's host, read now: the forge's (a minted or configured token), or
        the URL's own."""
        if not self.is_http:
            return None
        found = self.forge.credentials(self.url)
        if found is not None:
            return found
        return self._userinfo if self._userinfo and any(self._userinfo) else None

    def env(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """Environment for one network git process, and the secrets it holds; the credential is re-read."""
        config: dict[str, str] = lfs.endpoint_config(self.url)
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
        cancelled: Callable[[], bool] | None = None,
        hard: float | None = None,
        progress: OnStep | None = None,
    ) -> NetResult:
        """Run one git network command (`progress`: each step of git's `--progress` output, as it comes). Its
        whole process group is killed once it has done no work for `timeout` seconds (push_timeout by default:
        a long push that keeps working goes on), at `hard` seconds whatever it does (a stop's deadline), and at
        once when `cancelled` says so after it started.

        When the host refuses the credentials and its forge can get new ones (an App's installation token
        revoked or expired early), the command runs again, once, with them.
        """
        timeout = self.settings.push_timeout if timeout is None else max(timeout, 0.1)
        result = self._run_once(repo, args, timeout, cancelled, hard, progress)
        if not result.timed_out:
            error = self.forge.classify(result.returncode, result.stderr, result.stdout)
            if error is not None and error.kind == "auth" and self.forge.renew_credentials():
                again = self._run_once(repo, args, timeout, cancelled, hard, progress)
                return dataclasses.replace(again, seconds=again.seconds + result.seconds)
        return result

    def _run_once(
        self,
        repo: GitRepo,
        args: list[str],
        timeout: float,
        cancelled: Callable[[], bool] | None,
        hard: float | None,
        progress: OnStep | None = None,
    ) -> NetResult:
        if not _separated(args, self.url):
            raise PushError("unknown", "the remote URL is not after --end-of-options or -- in this git call")
        stall = max(1, min(60, int(timeout / 2)))
        limits = ["-c", "http.lowSpeedLimit=1000", "-c", f"http.lowSpeedTime={stall}"]
        argv = git_argv(repo.git_dir, [*limits, *args])
        env, secrets = self.env()
        start = time.monotonic()
        call = leftovers.Call(repo.git_dir)  # what was there before this call (another's, or older)
        try:
            # A session of its own, so a timeout kills git-remote-http or ssh along with git.
            proc = repo.runner.start(argv, env, subprocess.DEVNULL, network=True)
        except GitError as exc:
            raise PushError("unknown", f"cannot run git: {exc.stderr}") from None
        call.track(proc.pid)
        stopped, stored = "", 0
        progress = progress if progress is not None else shown_progress()  # a command's bar on a terminal
        tee = gitprogress.Tee(proc, progress) if progress is not None else None
        try:
            if cancelled is not None and cancelled():
                kill_group(proc)
            out, err, stopped, stored = _wait(proc, timeout, hard, self.settings, call)
            err = tee.text() if tee is not None else err
        finally:
            if proc.returncode is None:  # left by an exception: a signal stopping the command
                kill_group(proc)
                drain(proc)
            repo.runner.forget(proc)
            if stopped or proc.returncode < 0:
                # Killed (by a limit, a stop or a signal): what it was writing would stay on disk for ever.
                call.clean()
            call.untrack()
        if stopped in ("transfer_timeout", "max_transfer"):
            log.warning("transfer_stopped", remote=self.shown, limit=stopped,
                        seconds=round(time.monotonic() - start, 1), stored_bytes=stored)
        return NetResult(
            proc.returncode,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            time.monotonic() - start,
            bool(stopped),
            secrets,
            stopped,
            stored,
            self.forge,
        )


def _separated(args: list[str], url: str) -> bool:
    """Whether every place the URL is given follows `--end-of-options` (git) or `--` (git-lfs): even a URL
    that passed the parser is never where git could read it as an option."""
    return all(index > 0 and args[index - 1] in ("--end-of-options", "--")
               for index, arg in enumerate(args) if arg == url)


def _wait(proc: subprocess.Popen[bytes], quiet: float, hard: float | None, settings: Settings,
          call: leftovers.Call) -> tuple[bytes, bytes, str, int]:
    """Wait for a network git call: its whole group is killed once it has done no work (no CPU, no byte
    read or written by git or its helpers) for `quiet` seconds, at `hard` seconds whatever it does, past
    transfer_timeout however busy it is, and once it has written max_transfer bytes to storage (a remote
    that sends an endless pack or LFS body), counted as the larger of the group's `write_bytes` and the
    growth of the temporaries it writes in the git dir (tmpfs counts no `write_bytes`). A first push of a
    huge tree may take long; a remote that stopped answering leaves git idle. Returns (stdout, stderr, why
    it was killed or "", bytes stored)."""
    start = time.monotonic()
    watch = Quiet(proc.pid, quiet)
    limit = settings.transfer_timeout if hard is None else min(hard, settings.transfer_timeout)
    step = min(1.0, max(0.05, quiet / 4), max(0.05, limit / 20))
    stored = 0
    while True:
        wait = min(step, start + limit - time.monotonic())
        try:
            out, err = proc.communicate(timeout=max(0.01, wait))
            return out, err, "", max(stored, watch.stored)
        except subprocess.TimeoutExpired:
            pass
        idle, elapsed = watch.expired(), time.monotonic() - start
        stored = max(watch.stored, call.written(watch.members))
        why = ""
        if stored > settings.max_transfer:
            why = "max_transfer"
        elif hard is not None and elapsed >= hard:
            why = "deadline"
        elif elapsed >= settings.transfer_timeout:
            why = "transfer_timeout"
        elif idle:
            why = "idle"
        if why:
            kill_group(proc)
            out, err = drain(proc)
            return out, err, why, stored


def stopped_error(result: NetResult, action: str = "push") -> PushError:
    """The error of a call killed by a limit: idle past push_timeout, or past transfer_timeout or max_transfer."""
    if result.stopped in ("transfer_timeout", "max_transfer"):
        return limit_error(result.stopped, result.seconds, result.stored, action)
    return timeout_error(result.seconds)


def raise_for(result: NetResult, action: str = "push") -> None:
    """Raise the PushError of a network call that failed or ran out of time, classified by its forge."""
    if result.timed_out:
        raise stopped_error(result, action)
    judge = result.forge.classify if result.forge is not None else classify
    error = judge(result.returncode, result.stderr, result.stdout, secrets=result.secrets)
    if error:
        raise PushError(error.kind, error.detail, action) if action != "push" else error



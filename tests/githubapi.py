"""A loopback stand-in of the GitHub REST calls committer makes, answering as GitHub documents them.

* `POST /app/installations/{id}/access_tokens`: verifies the App's RS256 JWT with the App's public key
  (iss, iat, exp at most ten minutes ahead) and issues an installation token that expires after
  `token_ttl` seconds (201 `token`, `expires_at`); 401 for a bad JWT or a revoked installation.
* `GET /repos/{owner}/{repo}` (`private`, `visibility`, `clone_url`), `GET /users/{name}`, `GET /user`.
* `POST /user/repos`, `POST /orgs/{org}/repos` (201; 422 when the name is taken).
* `GET`/`POST /repos/{owner}/{repo}/hooks`, `PATCH /repos/{owner}/{repo}/hooks/{id}`.
* `POST /repos/{owner}/{repo}/pulls` (201; 422 when `head` is not a branch of the served repository, or a pull
  request of it is open already), `GET /repos/{owner}/{repo}/pulls?head=owner:branch&state=open|closed|all`,
  `GET /repos/{owner}/{repo}/pulls/{number}` (`number`, `state`, `merged`, `html_url`, `head`, `base`).
  `serve(full_name, bare)` names the git server's repository of a full name; `merge_pull` merges a pull request
  there as GitHub's merge button does (a fast-forward when the base has not moved, else a merge commit).

Tokens are accepted as `Authorization: Bearer <t>` or `token <t>`; `live(token)` tells the git server
which installation tokens are still valid, so a client that does not refresh them fails.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.gitserver import Replying

APP_ID = "424242"
INSTALLATION = 31337
PAT = "ghp_PersonalToken0123456789abcdefABCDEF00"
USER = "me"


def rsa_key() -> tuple[bytes, bytes]:
    """A fresh App key pair: (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@dataclass
class Call:
    """One request the stand-in saw."""

    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class GitHubAPI:
    """The stand-in's state: repositories, hooks, users, issued tokens; tests change it as they go."""

    public_key: bytes
    token_ttl: float = 3600.0
    revoked: bool = False
    down: bool = False
    misbehave: str = ""  # "hang": accept and never answer; "lie": 201 without a token
    released: threading.Event = field(default_factory=threading.Event)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    hooks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    orgs: set[str] = field(default_factory=lambda: {"acme"})
    calls: list[Call] = field(default_factory=list)
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    served: dict[str, Path] = field(default_factory=dict)
    minted: list[str] = field(default_factory=list)
    _tokens: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def live(self, token: str) -> bool:
        """Whether git may use this password: the personal token, or an installation token not yet expired."""
        with self._lock:
            return token == PAT or self._tokens.get(token, 0.0) > time.time()

    def expire_tokens(self) -> None:
        """Every installation token issued so far stops working now (as a revoked or rotated App key does)."""
        with self._lock:
            self._tokens.clear()

    def add_repo(self, full_name: str, private: bool = True) -> None:
        with self._lock:
            self.repos[full_name] = self._repo_json(full_name, private)

    def set_private(self, full_name: str, private: bool) -> None:
        with self._lock:
            self.repos[full_name].update(private=private, visibility="private" if private else "public")

    def serve(self, full_name: str, bare: Path) -> None:
        """The git server's bare repository of `full_name`: pull requests name its branches."""
        with self._lock:
            self.served[full_name] = bare

    def merge_pull(self, full_name: str, number: int) -> str:
        """Merge pull request `number` into its base in the served repository, as GitHub's button does; the new
        head of the base branch."""
        with self._lock:
            pull = next(p for p in self.pulls[full_name] if p["number"] == number)
            assert pull["state"] == "open" and not pull["merged"], pull
            bare = str(self.served[full_name])
            base, head = f"refs/heads/{pull['base']['ref']}", f"refs/heads/{pull['head']['ref']}"
            ours = _git(bare, "rev-parse", base)
            theirs = _git(bare, "rev-parse", head)
            if _git(bare, "merge-base", ours, theirs) == ours:
                new = theirs
            else:
                tree = _git(bare, "merge-tree", "--write-tree", ours, theirs).splitlines()[0]
                new = _git(bare, "commit-tree", tree, "-p", ours, "-p", theirs, "-m",
                           f"Merge pull request #{number} from {pull['head']['ref']}")
            _git(bare, "update-ref", base, new, ours)
            pull.update(state="closed", merged=True, merge_commit_sha=new)
            return new

    def requests(self, method: str, pattern: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and re.fullmatch(pattern, c.path)]

    def start(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="github-api", daemon=True).start()

    def stop(self) -> None:
        assert self._httpd is not None
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- answers ---------------------------------------------------------------------------------

    def _repo_json(self, full_name: str, private: bool) -> dict[str, Any]:
        owner, name = full_name.split("/")
        return {
            "id": abs(hash(full_name)) % 10**8, "name": name, "full_name": full_name, "private": private,
            "visibility": "private" if private else "public",
            "owner": {"login": owner, "type": "Organization" if owner in self.orgs else "User"},
            "html_url": f"https://github.example/{full_name}", "clone_url": f"https://github.example/{full_name}.git",
        }

    def _who(self, authorization: str | None) -> str | None:
        """'user' for the personal token, 'app' for a live installation token, None otherwise."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        if value == PAT:
            return "user"
        return "app" if value in self._tokens and self._tokens[value] > time.time() else None

    def answer(self, method: str, path: str, authorization: str | None, body: Any) -> tuple[int, Any]:
        with self._lock:
            self.calls.append(Call(method, path, authorization, body))
            if match := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path):
                return self._mint(int(match.group(1)), authorization) if method == "POST" else (404, _NOT_FOUND)
            who = self._who(authorization)
            if authorization and who is None:
                return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
            return self._rest(method, path, who, body)

    def _mint(self, installation: int, authorization: str | None) -> tuple[int, Any]:
        scheme, _, assertion = (authorization or "").partition(" ")
        try:
            if scheme != "Bearer":
                raise jwt.InvalidTokenError("not a bearer JWT")
            claims = jwt.decode(
                assertion, self.public_key, algorithms=["RS256"], issuer=APP_ID,
                options={"require": ["iat", "exp", "iss"]}, leeway=0,
            )
            if claims["exp"] > time.time() + 600 or claims["iat"] > time.time():
                raise jwt.InvalidTokenError("exp too far ahead or iat in the future")
        except jwt.InvalidTokenError:
            return 401, {"message": "A JSON web token could not be decoded",
                         "documentation_url": "https://docs.github.com/rest"}
        if installation != INSTALLATION:
            return 404, _NOT_FOUND
        if self.revoked:
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = time.time() + self.token_ttl
        self._tokens[token] = expires
        self.minted.append(token)
        at = datetime.datetime.fromtimestamp(expires, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return 201, {"token": token, "expires_at": at, "permissions": {"contents": "write", "metadata": "read"},
                     "repository_selection": "selected"}

    def _rest(self, method: str, path: str, who: str | None, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/user":
            if who == "app":
                return 403, {"message": "Resource not accessible by integration"}
            return (200, {"login": USER, "type": "User"}) if who else (401, {"message": "Requires authentication"})
        if method == "GET" and (match := re.fullmatch(r"/users/([^/]+)", path)):
            name = match.group(1)
            return 200, {"login": name, "type": "Organization" if name in self.orgs else "User"}
        if method == "POST" and (match := re.fullmatch(r"/user/repos|/orgs/([^/]+)/repos", path)):
            return self._create(match.group(1) or (USER if who == "user" else None), who, body)
        if match := re.fullmatch(r"/repos/([^/]+/[^/]+?)/pulls(?:/(\d+))?(?:\?(.*))?", path):
            full, number, query = match.groups()
            repo = self.repos.get(full)
            if repo is None or (repo["private"] and who is None):
                return 404, _NOT_FOUND
            return self._pulls(method, full, number, parse_qs(query or ""), who, body)
        if match := re.fullmatch(r"/repos/([^/]+/[^/]+?)(/hooks(?:/(\d+))?)?", path):
            full, hooks, hook_id = match.groups()
            repo = self.repos.get(full)
            if repo is None or (repo["private"] and who is None):
                return 404, _NOT_FOUND
            if not hooks:
                return (200, repo) if method == "GET" else (404, _NOT_FOUND)
            return self._hooks(method, full, hook_id, who, body)
        return 404, _NOT_FOUND

    def _create(self, owner: str | None, who: str | None, body: Any) -> tuple[int, Any]:
        if who is None:
            return 401, {"message": "Requires authentication"}
        if owner is None:
            return 403, {"message": "Resource not accessible by integration"}
        full = f"{owner}/{body['name']}"
        if full in self.repos:
            return 422, {"message": "Repository creation failed.",
                         "errors": [{"resource": "Repository", "field": "name", "message": "name already exists"}]}
        self.repos[full] = self._repo_json(full, private=bool(body.get("private", False)))
        return 201, self.repos[full]

    def _pulls(self, method: str, full: str, number: str | None, query: dict[str, list[str]], who: str | None,
               body: Any) -> tuple[int, Any]:
        pulls = self.pulls.setdefault(full, [])
        if method == "GET" and number is not None:
            found = next((p for p in pulls if p["number"] == int(number)), None)
            return (200, found) if found is not None else (404, _NOT_FOUND)
        if method == "GET":
            state = (query.get("state") or ["open"])[0]
            head = (query.get("head") or [""])[0]
            return 200, [p for p in pulls if (state == "all" or p["state"] == state)
                         and (not head or f"{full.split('/')[0]}:{p['head']['ref']}" == head)]
        if method != "POST" or number is not None:
            return 404, _NOT_FOUND
        if who is None:
            return 401, {"message": "Requires authentication"}
        head, base = str(body.get("head") or ""), str(body.get("base") or "")
        bare = self.served.get(full)
        heads = {b: _git(str(bare), "rev-parse", "-q", "--verify", f"refs/heads/{b}", check=False)
                 for b in (head, base)} if bare is not None else {head: "0" * 40, base: "0" * 40}
        if not body.get("title") or not heads.get(head) or not heads.get(base):
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "field": "head" if not heads.get(head) else "base", "code": "invalid"}]}
        if any(p["head"]["ref"] == head and p["state"] == "open" for p in pulls):
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "code": "custom",
                 "message": f"A pull request already exists for {full.split('/')[0]}:{head}."}]}
        number_ = len(pulls) + 1
        pull = {"number": number_, "state": "open", "merged": False, "title": body["title"],
                "body": body.get("body"), "html_url": f"https://github.example/{full}/pull/{number_}",
                "url": f"{self.url}/repos/{full}/pulls/{number_}",
                "head": {"ref": head, "sha": heads[head]}, "base": {"ref": base, "sha": heads[base]}}
        pulls.append(pull)
        return 201, pull

    def _hooks(self, method: str, full: str, hook_id: str | None, who: str | None, body: Any) -> tuple[int, Any]:
        if who is None:
            return 404, _NOT_FOUND
        hooks = self.hooks.setdefault(full, [])
        if method == "GET" and hook_id is None:
            return 200, [_shown(h) for h in hooks]
        if method == "POST" and hook_id is None:
            if body.get("name") != "web" or not body.get("config", {}).get("url"):
                return 422, {"message": "Validation Failed"}
            hook = {"id": len(hooks) + 1, "name": "web", "active": body.get("active", True),
                    "events": body.get("events", ["push"]), "config": dict(body["config"])}
            hooks.append(hook)
            return 201, _shown(hook)
        if method == "PATCH" and hook_id is not None:
            for hook in hooks:
                if hook["id"] == int(hook_id):
                    hook["config"].update(body.get("config") or {})
                    hook.update({k: body[k] for k in ("active", "events") if k in body})
                    return 200, _shown(hook)
        return 404, _NOT_FOUND


_NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}


def _git(bare: str, *args: str, check: bool = True) -> str:
    """One git command in a served bare repository (a merge button's work); its output, stripped."""
    done = subprocess.run(["git", "--git-dir", bare, *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "GIT_AUTHOR_NAME": "GitHub", "GIT_AUTHOR_EMAIL": "noreply@github.com",
                               "GIT_COMMITTER_NAME": "GitHub", "GIT_COMMITTER_EMAIL": "noreply@github.com"})
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout.strip()


def _shown(hook: dict[str, Any]) -> dict[str, Any]:
    """A hook as GitHub lists it: the secret is never given back."""
    config = dict(hook["config"])
    if config.get("secret"):
        config["secret"] = "********"
    return {**hook, "config": config}


class _Handler(Replying):
    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        api: GitHubAPI = self.server.owner  # type: ignore[attr-defined]
        self.close_connection = True
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if api.misbehave == "hang":
            api.released.wait(30)
            return
        if api.down:
            status, payload = 503, {"message": "Service Unavailable"}
        elif api.misbehave == "lie":
            status, payload = 201, {"expires_at": "2030-01-01T00:00:00Z"}
        else:
            body = json.loads(raw) if raw else None
            path = self.path if "/pulls" in self.path else self.path.split("?")[0]
            status, payload = api.answer(self.command, path, self.headers.get("Authorization"), body)
        self._reply(status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode())


@pytest.fixture(scope="session")
def app_key() -> tuple[bytes, bytes]:
    """One App key pair for the whole test run (generating one takes a moment)."""
    return rsa_key()


@pytest.fixture
def github_api(app_key: tuple[bytes, bytes], tmp_path: Path) -> Iterator[GitHubAPI]:
    """A started stand-in; the App's private key is at tmp_path / 'app.pem'."""
    (tmp_path / "app.pem").write_bytes(app_key[0])
    api = GitHubAPI(public_key=app_key[1])
    api.start()
    try:
        yield api
    finally:
        api.stop()

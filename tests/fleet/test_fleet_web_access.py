"""Who may read the fleet's overview page and /metrics, on a real uvicorn: open on loopback under loopback Host
names only; on any other bind (as the configuration says it: the tests listen on loopback only) only with the
API token (Bearer, or Basic as a browser sends it), re-read when the file changes; off there without a token
file. /healthz stays open for probes."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from committer.fleet import schema
from committer.fleet.config import FleetConfig
from committer.fleet.db import engine
from committer.fleet.store import Store
from committer.fleet.web import serve_http

TOKEN = "fleet-api-token-0123456789abcdef"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    db = engine(f"sqlite:///{tmp_path / 'fleet.db'}")
    schema.upgrade(db)
    servers = []

    def start(http: str, token_file: Path | None = None) -> str:
        config = FleetConfig(repos_dir=tmp_path / "repos", http=http, api_token_file=token_file)
        server = serve_http(config, Store(db, tmp_path / "repos"), bind=("127.0.0.1", 0))
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
        db.dispose()


def test_on_loopback_the_pages_are_open_to_loopback_host_names_only(serve) -> None:  # type: ignore[no-untyped-def]
    base = serve("127.0.0.1:0")
    for path in ("/", "/metrics", "/healthz"):
        assert get(base + path)[0] == 200
    for path in ("/", "/metrics"):
        status, _, body = get(base + path, {"Host": "rebound.example"})
        assert status == 403 and b"loopback host names only" in body


def test_off_loopback_the_pages_need_the_api_token(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN + "\n")
    base = serve("0.0.0.0:8470", token_file)
    basic = "Basic " + base64.b64encode(f"operator:{TOKEN}".encode()).decode()
    for path in ("/", "/metrics"):
        status, headers, body = get(base + path)
        assert status == 401 and headers.get("www-authenticate") == 'Basic realm="committer fleet"'
        assert TOKEN.encode() not in body
        assert get(base + path, {"Authorization": "Bearer wrong-token"})[0] == 401
        assert get(base + path, {"Authorization": "Basic !!notbase64"})[0] == 401
        assert get(base + path, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert get(base + path, {"Authorization": basic, "Host": "fleet.example"})[0] == 200
    assert get(base + "/healthz")[0] == 200
    token_file.write_text("rotated-" + TOKEN + "\n")
    assert get(base + "/", {"Authorization": f"Bearer {TOKEN}"})[0] == 401
    assert get(base + "/", {"Authorization": f"Bearer rotated-{TOKEN}"})[0] == 200


def test_off_loopback_without_a_token_file_the_pages_are_off(serve) -> None:  # type: ignore[no-untyped-def]
    base = serve("0.0.0.0:8470")
    for path in ("/", "/metrics"):
        status, _, body = get(base + path, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 403 and b"--api-token-file" in body
    assert get(base + "/healthz")[0] == 200

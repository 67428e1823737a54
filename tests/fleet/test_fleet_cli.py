"""`committer fleet ...` as a process against a real API on 127.0.0.1: human and --json output, exit codes
(0 ok; 2 usage, settings and INVALID_ARGUMENT; 1 NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, an unreachable
server), one-line errors, and the plain commands never loading the fleet's libraries."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import committer
from tests.fleet.test_api import TOKEN, Fleet, _self_signed, start

pytestmark = pytest.mark.integration
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    running = start(tmp_path_factory.mktemp("fleet-cli"))
    running.org("acme")
    yield running
    running.client.close()
    running.server.stop(0)


def cli(fleet: Fleet, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return committer("fleet", *args, env={"COMMITTER_FLEET_SERVER": f"127.0.0.1:{fleet.server.port}",
                                          **(env or {})})


def each(fleet: Fleet, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands side by side (each is a Python start-up)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda args: cli(fleet, *args), commands))


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The command failed with `code` and said so in one line (no traceback) containing `words`."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("committer fleet: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_the_whole_round_human_and_json(fleet: Fleet) -> None:
    """org create/list, create, show, list, task, migrate, sync and archive: short aligned lines by default,
    the answer's message as JSON with --json."""
    made = cli(fleet, "org", "create", "globex", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["slug"] == "globex"
    created = cli(fleet, "create", "site", "--org", "globex", "--source", "https://github.com/globex/site.git",
                  "--source-type", "github", "--mirror", "--credential", "github-globex", "--description",
                  "the web site", "--sync-interval", "10m")
    assert created.returncode == 0, created.stderr
    first, *rest = created.stdout.splitlines()
    task_id = re.fullmatch(rf"created globex/site; migration queued as task ({UUID})", first)
    assert task_id, first
    fields = dict(re.split(r":\s+", line, maxsplit=1) for line in rest)
    assert (fields["repository"], fields["status"], fields["credential"], fields["sync interval"]) == (
        "globex/site", "pending", "github-globex", "600s")
    assert fields["source"] == "https://github.com/globex/site.git (github, mirror)"
    assert fields["layout"] == "bare, private" and fields["last sync"] == "never"
    assert len({len(line) - len(line.split(":", 1)[1].lstrip()) for line in rest}) == 1  # values aligned

    regular = cli(fleet, "create", "notes", "--org", "globex", "--regular", "--public", "--json")
    assert regular.returncode == 0, regular.stderr
    answer = json.loads(regular.stdout)
    assert answer["repository"]["is_bare"] is False and answer["repository"]["is_public"] is True
    assert "initialisation queued as task" in answer["message"]

    listed, orgs, task, task_json = each(fleet, ("list", "--org", "globex"), ("org", "list"), ("task", task_id[1]),
                                         ("task", task_id[1], "--json"))
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "REPOSITORY", "STATUS", "LAST", "SYNC", "COMMITS", "ERROR"]
    assert [line.split()[1:3] for line in lines[1:]] == [["globex/site", "pending"], ["globex/notes", "pending"]]
    assert len({line.index("pending") for line in lines[1:]} | {lines[0].index("STATUS")}) == 1
    assert re.search(r"^\d+\s+globex$", orgs.stdout, re.MULTILINE), orgs.stdout
    assert "kind:           migrate" in task.stdout and "status:         pending" in task.stdout
    assert json.loads(task_json.stdout)["kind"] == "migrate"

    migrated = cli(fleet, "migrate", "globex/site", "--force")
    assert migrated.returncode == 0 and re.search(rf"queued as task {UUID} \(forced", migrated.stdout)
    synced = cli(fleet, "sync", "globex/site", "--json")
    assert synced.returncode == 0 and json.loads(synced.stdout)["status"] == "pending"
    assert (fleet.sent[-2].kind, fleet.sent[-2].force, fleet.sent[-1].kind) == ("migrate", True, "sync")
    archived = cli(fleet, "archive", "globex/site")
    assert archived.returncode == 0 and re.search(r"^status:\s+archived$", archived.stdout, re.MULTILINE)
    one_line_error(cli(fleet, "sync", "globex/site"), 1, "archived")


def test_each_refusal_is_one_line_and_its_exit_code(fleet: Fleet) -> None:
    """INVALID_ARGUMENT and usage errors exit 2, NOT_FOUND / ALREADY_EXISTS / FAILED_PRECONDITION exit 1,
    each with one line naming the field."""
    fleet.repo(1, "taken")
    empty = fleet.repo(1, "empty")
    bad_name, bad_url, no_org, bad_interval, duplicate, unknown, no_org_found, no_source, bad_status = each(
        fleet,
        ("create", "a/b", "--org", "acme"),
        ("create", "site2", "--org", "acme", "--source", "https://user:hunter2@github.com/acme/site.git"),
        ("create", "site3"),
        ("create", "site4", "--org", "acme", "--sync-interval", "often"),
        ("create", "taken", "--org", "acme"),
        ("show", "9999"),
        ("show", "nowhere/site"),
        ("sync", str(empty.id)),
        ("list", "--status", "sleeping"),
    )
    one_line_error(bad_name, 2, "name:")
    assert "hunter2" not in one_line_error(bad_url, 2, "source_url:")
    one_line_error(no_org, 2, "--org")
    one_line_error(bad_interval, 2, "--sync-interval")
    one_line_error(duplicate, 1, "acme/taken exists")
    one_line_error(unknown, 1, "repository 9999 does not exist")
    one_line_error(no_org_found, 1, "organisation 'nowhere' does not exist")
    one_line_error(no_source, 1, "no source_url")
    one_line_error(bad_status, 2, "status:")


def test_an_unreachable_server_is_one_line_and_exit_1(fleet: Fleet) -> None:
    """Nothing listening at --server: one line naming the address, exit 1, no traceback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli(fleet, "list", "--server", f"127.0.0.1:{port}")
    one_line_error(result, 1, f"127.0.0.1:{port}", "unavailable")
    one_line_error(cli(fleet, "list", "--server", "nowhere"), 2, "server:")


def test_a_token_server_needs_token_file_and_a_tls_server_tls_ca(tmp_path: Path) -> None:
    """Against a server with a token: without --token-file exit 2 naming it; with it (or its environment
    variable) the call works. Against a TLS server, --tls-ca makes the call."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    cert, key = _self_signed(tmp_path)
    secured = start(tmp_path, api_token_file=token_file, tls_cert=cert, tls_key=key)
    try:
        without, flagged, without_json = each(
            secured,
            ("org", "list", "--tls-ca", str(cert)),
            ("org", "create", "secure", "--tls-ca", str(cert), "--token-file", str(token_file)),
            ("org", "list", "--json", "--tls-ca", str(cert)))
        assert TOKEN not in one_line_error(without, 2, "token", "--token-file")
        assert flagged.returncode == 0 and "created organisation secure" in flagged.stdout, flagged.stderr
        assert without_json.returncode == 2 and not without_json.stdout
        with_env = cli(secured, "org", "list", "--json", "--tls-ca", str(cert),
                       env={"COMMITTER_FLEET_API_TOKEN_FILE": str(token_file)})
        assert with_env.returncode == 0, with_env.stderr
        assert [o["slug"] for o in json.loads(with_env.stdout)["organisations"]] == ["secure"]
    finally:
        secured.client.close()
        secured.server.stop(0)


def test_process_commands_refuse_bad_settings_in_one_line(fleet: Fleet, tmp_path: Path) -> None:
    """up/api/worker/beat load their settings first: a bad one is one line naming it, exit 2."""
    off_loopback, no_workers, bad_db = each(
        fleet,
        ("up", "--repos-dir", str(tmp_path), "--grpc", "0.0.0.0:50051"),
        ("worker", "--repos-dir", str(tmp_path), "--concurrency", "0"),
        ("api", "--repos-dir", str(tmp_path), "--db", "fleet.db"))
    one_line_error(off_loopback, 2, "api_token_file")
    one_line_error(no_workers, 2, "--concurrency")
    one_line_error(bad_db, 2, "db:")


def test_a_database_that_cannot_be_opened_is_one_line_without_its_password(fleet: Fleet, tmp_path: Path) -> None:
    """A database URL without its scheme is not repeated (its password would be); one SQLAlchemy has no driver
    for is exit 2; a database that does not answer is exit 1; never a traceback, never the password."""
    ports = []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        ports.append(sock.getsockname()[1])
    no_scheme, no_driver, no_answer = each(
        fleet,
        ("api", "--repos-dir", str(tmp_path), "--db", "fleet:hunter2@db.example/fleet"),
        ("worker", "--repos-dir", str(tmp_path), "--db", "nosuch://fleet:hunter2@db.example/fleet"),
        ("beat", "--repos-dir", str(tmp_path), "--db", f"postgresql://fleet:hunter2@127.0.0.1:{ports[0]}/fleet"))
    for result, code in [(no_scheme, 2), (no_driver, 2), (no_answer, 1)]:
        line = one_line_error(result, code, "db:")
        assert "hunter2" not in line


def test_process_commands_log_through_committers_logging(tmp_path: Path) -> None:
    """`committer fleet api` writes committer's log lines (JSON here: every registered secret removed, a
    traceback without its frames' values), not the logging library's defaults; a bad log setting is one line."""
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    env = {**os.environ, "COMMITTER_LOG_FORMAT": "json"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "committer", "fleet", "api", "--repos-dir", str(tmp_path / "repos"),
         "--grpc", f"127.0.0.1:{ports[0]}", "--http", f"127.0.0.1:{ports[1]}"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    assert proc.stderr is not None
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "api listening" in line or len(lines) > 50:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    lines += rest.splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    assert "grpc_listening" in [event["event"] for event in events]

    bad = committer("fleet", "api", "--repos-dir", str(tmp_path / "repos"), env={"COMMITTER_LOG_LEVEL": "loud"})
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "committer fleet: error: COMMITTER_LOG_LEVEL: 'loud' is not one of debug, info, warning, error"]


def test_without_the_fleet_extra_one_line_says_what_to_install(tmp_path: Path) -> None:
    """grpc missing: `committer fleet ...` says to install committer[fleet] and exits 2."""
    code = ("import sys; sys.modules['grpc'] = None; sys.argv = ['committer', 'fleet', 'org', 'list']; "
            "from committer.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "committer fleet: error: the fleet's libraries are not installed (grpc is missing): "
        "pip install 'committer[fleet]'"]


def test_the_plain_commands_never_load_the_fleets_libraries() -> None:
    """Importing the CLI (every plain command) loads no grpc, protobuf, SQLAlchemy, Alembic or Celery."""
    code = ("import sys, committer.cli; from committer.cli import app; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'grpc', 'google', 'sqlalchemy', 'alembic', "
            "'celery', 'kombu', 'grpc_health', 'grpc_reflection', 'psycopg'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

"""RepositoryService over a real gRPC server on 127.0.0.1 with a SQLite store: every RPC, every refusal as its
status code, keyset paging, health checking, reflection, the bearer token and TLS."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from committer.core.errors import ConfigError
from committer.fleet import db, schema
from committer.fleet import fleet_pb2 as pb
from committer.fleet.config import FleetConfig
from committer.fleet.db import SyncTask
from committer.fleet.rpc import CallFailed, Connection, GrpcServer, serve_grpc
from committer.fleet.store import BranchState, NewRepository, Store

TOKEN = "s3cret-api-token-0123456789"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass
class Fleet:
    """A running API: its store, the tasks it sent, and a client connected to it."""

    store: Store
    server: GrpcServer
    client: Connection
    sent: list[SyncTask] = field(default_factory=list)
    fail_send: list[str] = field(default_factory=list)

    def send(self, task: SyncTask) -> None:
        if self.fail_send:
            raise ConnectionError(self.fail_send[0])
        self.sent.append(task)

    def call(self, method: str, request: object) -> object:
        return self.client.call(method, request)

    def refused(self, method: str, request: object) -> CallFailed:
        with pytest.raises(CallFailed) as caught:
            self.client.call(method, request)
        assert "\n" not in caught.value.message
        return caught.value

    def org(self, slug: str) -> int:
        return int(self.client.call("CreateOrganisation", pb.CreateOrganisationRequest(slug=slug)).id)

    def repo(self, org_id: int, name: str, **fields: object) -> pb.Repository:
        request = pb.CreateRepositoryRequest(name=name, organisation_id=org_id, **fields)
        return self.client.call("CreateRepository", request).repository


def start(root: Path, **settings: object) -> Fleet:
    made = db.engine(f"sqlite:///{root / 'fleet.db'}")
    schema.upgrade(made)
    store = Store(made, root / "repos")
    fleet = Fleet(store, None, None)
    config = FleetConfig(repos_dir=root / "repos", grpc="127.0.0.1:0", **settings)
    fleet.server = serve_grpc(config, store, fleet.send)
    fleet.client = Connection(f"127.0.0.1:{fleet.server.port}", timeout=10)
    return fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    running = start(tmp_path_factory.mktemp("fleet"))
    yield running
    running.client.close()
    running.server.stop(0)


@pytest.fixture(scope="module")
def acme(fleet: Fleet) -> int:
    return fleet.org("acme")


# Organisations


def test_organisations_are_created_listed_and_refused_twice(fleet: Fleet) -> None:
    """CreateOrganisation answers the row; ListOrganisations lists it; the same slug again is ALREADY_EXISTS."""
    made = fleet.call("CreateOrganisation", pb.CreateOrganisationRequest(slug="globex"))
    assert made.slug == "globex" and made.id > 0
    listed = fleet.call("ListOrganisations", pb.ListOrganisationsRequest())
    assert ("globex", made.id) in [(o.slug, o.id) for o in listed.organisations]
    again = fleet.refused("CreateOrganisation", pb.CreateOrganisationRequest(slug="globex"))
    assert again.code == "ALREADY_EXISTS" and "globex" in again.message


@pytest.mark.parametrize("slug", ["", "a/b", "a..b", "-org", ".org", "x" * 101])
def test_a_bad_slug_is_invalid_argument(fleet: Fleet, slug: str) -> None:
    """Every slug rule of the issue: one line naming the slug."""
    failed = fleet.refused("CreateOrganisation", pb.CreateOrganisationRequest(slug=slug))
    assert failed.code == "INVALID_ARGUMENT" and failed.message.startswith("slug:")


# Repositories


def test_create_without_a_source_initialises_and_with_one_migrates(fleet: Fleet, acme: int) -> None:
    """CreateRepository records the row and sends an initialize task, or a migrate task when given a source;
    the answer names the task and shows the credential by its name only."""
    answer = fleet.call("CreateRepository", pb.CreateRepositoryRequest(
        name="empty", organisation_id=acme, description="notes", is_bare=True))
    task = fleet.sent[-1]
    assert (task.kind, task.repository_id) == ("initialize", answer.repository.id)
    assert task.task_id in answer.message
    repo = answer.repository
    assert (repo.name, repo.organisation_slug, repo.status, repo.is_bare) == ("empty", "acme", "pending", True)
    assert repo.local_path.endswith("/repos/acme/empty")
    assert repo.last_synced_at == "" and repo.last_pushed_at == ""

    answer = fleet.call("CreateRepository", pb.CreateRepositoryRequest(
        name="site", organisation_id=acme, source_url="https://github.com/acme/site.git", source_type="github",
        is_mirror=True, credential="github-acme", sync_interval=600))
    task = fleet.sent[-1]
    assert (task.kind, task.force, task.repository_id) == ("migrate", False, answer.repository.id)
    assert task.task_id in answer.message and "migration" in answer.message
    repo = answer.repository
    assert (repo.source_type, repo.is_mirror, repo.credential, repo.sync_interval) == (
        "github", True, "github-acme", 600)
    shown = fleet.call("GetSyncTask", pb.GetSyncTaskRequest(task_id=task.task_id))
    assert (shown.kind, shown.status, shown.repository_id, shown.started_at) == ("migrate", "pending", repo.id, "")


@pytest.mark.parametrize("name", ["", "a/b", "..", "a..b", "-repo", ".repo", "r" * 101,
                                  "\uff53\uff49\uff54\uff45",  # full-width 'site'
                                  "a\u2024\u2024b",  # one-dot leaders: 'a..b' to the eye
                                  "site\u200b", "a\u202eb", "a\u2028b", "a\u00a0b",
                                  "\U0001f600" * 100])  # 100 characters, 400 bytes: more than a folder name holds
def test_a_bad_name_is_invalid_argument(fleet: Fleet, acme: int, name: str) -> None:
    """Every name rule of the issue, refused before anything is recorded or sent."""
    before = len(fleet.sent)
    failed = fleet.refused("CreateRepository", pb.CreateRepositoryRequest(name=name, organisation_id=acme))
    assert failed.code == "INVALID_ARGUMENT" and failed.message.startswith("name:")
    assert len(fleet.sent) == before


@pytest.mark.parametrize("url", [
    "http://example.com/acme/site.git",  # plain http off loopback
    "ftp://example.com/site.git",
    "git://example.com/site.git",
    "relative/path",
    "-oProxyCommand=touch /tmp/x",
    "https://user:hunter2@github.com/acme/site.git",  # credentials belong in a credential file
    "https://ghp_abcdef@github.com/acme/site.git",
    "ssh://git:hunter2@example.com/site.git",
    "https://gitlab.com/acme/site.git?private_token=glpat-hunter2",  # kept and shown everywhere otherwise
])
def test_a_bad_source_url_is_invalid_argument_and_never_echoed(fleet: Fleet, acme: int, url: str) -> None:
    """A source that is not https, ssh or a local path (http only to loopback), or holds a credential: one line
    naming source_url that does not repeat the credential."""
    failed = fleet.refused("CreateRepository", pb.CreateRepositoryRequest(
        name="bad-source", organisation_id=acme, source_url=url))
    assert failed.code == "INVALID_ARGUMENT" and failed.message.startswith("source_url:")
    assert "hunter2" not in failed.message and "ghp_abcdef" not in failed.message


@pytest.mark.parametrize("url", ["https://gitlab.com/acme/site.git", "ssh://git@example.com/site.git",
                                 "git@github.com:acme/site.git", "/srv/git/site.git", "file:///srv/git/site.git",
                                 "http://127.0.0.1:8080/site.git"])
def test_every_accepted_kind_of_source_is_recorded(fleet: Fleet, acme: int, url: str) -> None:
    """https, ssh (URL or scp form), a local path or file:// URL, and http to loopback are sources."""
    name = "ok-" + re.sub(r"[^a-z0-9]+", "-", url)[:60]
    assert fleet.repo(acme, name, source_url=url).source_url == url


def test_a_local_source_that_is_the_fleets_own_is_invalid_argument(fleet: Fleet, acme: int, tmp_path: Path) -> None:
    """A local path or file:// source may be any repository on the machine but the fleet's state folder, the
    repositories' folder or an organisation's, the repository itself, or another organisation's repository;
    links and `..` are resolved before deciding, and so are a `.git` file, a `commondir` and alternates."""
    repos = fleet.store.repos_dir
    other = fleet.org("other-tenant")
    link = tmp_path / "state-link"
    link.symlink_to(repos / ".fleet", target_is_directory=True)
    for url in [f"{repos}/.fleet", f"file://{repos}/.fleet", f"{repos}/acme/../.fleet/broker.db", str(link),
                str(repos), f"{repos}/acme", "/", f"{repos}/acme/self-source", f"{repos}/acme/self-source/.git",
                f"{repos}/acme/.self-source.incoming-0123456789ab", f"{repos}/other-tenant/secret"]:
        failed = fleet.refused("CreateRepository", pb.CreateRepositoryRequest(
            name="self-source", organisation_id=acme, source_url=url))
        assert failed.code == "INVALID_ARGUMENT" and failed.message.startswith("source_url:"), url
    assert fleet.repo(acme, "fork", source_url=f"{repos}/acme/site").source_url == f"{repos}/acme/site"
    # Outside the fleet's folder, but pointing git into another organisation's repository or the fleet's state.
    pointer = tmp_path / "worktree-like"
    pointer.mkdir()
    (pointer / ".git").write_text(f"gitdir: {repos}/other-tenant/secret\n")
    common = tmp_path / "common-like" / ".git"
    common.mkdir(parents=True)
    (common / "commondir").write_text(f"{repos}/.fleet\n")
    borrowed = tmp_path / "borrowed.git" / "objects" / "info"
    borrowed.mkdir(parents=True)
    (borrowed / "alternates").write_text(f"# shared objects\n{repos}/other-tenant/secret/objects\n")
    for url in [str(pointer), f"file://{pointer}", str(common.parent), str(borrowed.parent.parent)]:
        failed = fleet.refused("CreateRepository", pb.CreateRepositoryRequest(
            name="pointed", organisation_id=acme, source_url=url))
        assert failed.code == "INVALID_ARGUMENT" and failed.message.startswith("source_url:"), url
    mine = fleet.repo(other, "mine", source_url="/srv/git/mine.git")
    failed = fleet.refused("MigrateRepository", pb.MigrateRepositoryRequest(
        repository_id=mine.id, source_url=f"file://{repos}/other-tenant/mine"))
    assert failed.code == "INVALID_ARGUMENT"
    shown = fleet.call("GetRepository", pb.GetRepositoryRequest(repository_id=mine.id)).repository
    assert shown.source_url == "/srv/git/mine.git"


@pytest.mark.parametrize("credential", ["events", "events.acme.site", "../creds", "-x", ".hidden"])
def test_a_credential_name_that_is_no_git_credential_is_invalid_argument(fleet: Fleet, acme: int,
                                                                         credential: str) -> None:
    """The HTTP side's event secrets (`events`, `events.<organisation>.<name>`) are never handed to git as a
    repository's credential, and a credential name is one plain file name."""
    failed = fleet.refused("CreateRepository", pb.CreateRepositoryRequest(
        name="with-credential", organisation_id=acme, source_url="https://example.com/x.git", credential=credential))
    assert failed.code == "INVALID_ARGUMENT" and failed.message.startswith("credential:")


def test_huge_values_are_refused_at_once_in_one_short_line(fleet: Fleet, acme: int) -> None:
    """A 200,000-character task id or page token is answered before the client's deadline (removing credentials
    from the message it is echoed in costs time in proportion to its length, not its square), in at most about
    1,000 characters; an over-long source URL or description is INVALID_ARGUMENT."""
    for method, request, code in [("GetSyncTask", pb.GetSyncTaskRequest(task_id="x" * 200_000), "NOT_FOUND"),
                                  ("ListRepositories", pb.ListRepositoriesRequest(page_token="y" * 200_000),
                                   "INVALID_ARGUMENT")]:
        failed = fleet.refused(method, request)
        assert failed.code == code and len(failed.message) <= 1010, method
    for setting, value in [("source_url", "https://example.com/" + "p" * 2000), ("description", "d" * 1001)]:
        failed = fleet.refused("CreateRepository", pb.CreateRepositoryRequest(
            name="huge", organisation_id=acme, **{setting: value}))
        assert failed.code == "INVALID_ARGUMENT" and failed.message.startswith(f"{setting}:"), setting


def test_a_repository_twice_is_already_exists_and_unknown_ids_are_not_found(fleet: Fleet, acme: int) -> None:
    """The same name in one organisation is ALREADY_EXISTS; an unknown repository, organisation or task is
    NOT_FOUND; a missing id is INVALID_ARGUMENT."""
    fleet.repo(acme, "twice")
    assert fleet.refused("CreateRepository", pb.CreateRepositoryRequest(
        name="twice", organisation_id=acme)).code == "ALREADY_EXISTS"
    assert fleet.repo(acme, "\u00e9" * 100).local_path.endswith("/acme/" + "\u00e9" * 100)  # 100 characters, 200 bytes
    assert fleet.refused("CreateRepository", pb.CreateRepositoryRequest(
        name="orphan", organisation_id=9999)).code == "NOT_FOUND"
    for method, request in [("GetRepository", pb.GetRepositoryRequest(repository_id=9999)),
                            ("SyncRepository", pb.SyncRepositoryRequest(repository_id=9999)),
                            ("MigrateRepository", pb.MigrateRepositoryRequest(repository_id=9999)),
                            ("ArchiveRepository", pb.ArchiveRepositoryRequest(repository_id=9999)),
                            ("GetSyncTask", pb.GetSyncTaskRequest(task_id="no-such-task"))]:
        failed = fleet.refused(method, request)
        assert failed.code == "NOT_FOUND", method
    for method, request in [("GetRepository", pb.GetRepositoryRequest()), ("GetSyncTask", pb.GetSyncTaskRequest()),
                            ("CreateRepository", pb.CreateRepositoryRequest(name="no-org"))]:
        assert fleet.refused(method, request).code == "INVALID_ARGUMENT", method


def test_migrate_and_sync_send_their_tasks(fleet: Fleet, acme: int) -> None:
    """MigrateRepository (a new, checked source; force) and SyncRepository each send one task and name it."""
    repo = fleet.repo(acme, "moving", source_url="https://github.com/acme/old.git")
    bad = fleet.refused("MigrateRepository", pb.MigrateRepositoryRequest(
        repository_id=repo.id, source_url="http://example.com/new.git"))
    assert bad.code == "INVALID_ARGUMENT" and bad.message.startswith("source_url:")

    moved = fleet.call("MigrateRepository", pb.MigrateRepositoryRequest(
        repository_id=repo.id, source_url="https://gitlab.com/acme/new.git", force=True))
    task = fleet.sent[-1]
    assert (task.kind, task.force, task.task_id, moved.task_id) == ("migrate", True, moved.task_id, task.task_id)
    assert (moved.repository_id, moved.status) == (repo.id, "pending")
    shown = fleet.call("GetRepository", pb.GetRepositoryRequest(repository_id=repo.id)).repository
    assert shown.source_url == "https://gitlab.com/acme/new.git"

    synced = fleet.call("SyncRepository", pb.SyncRepositoryRequest(repository_id=repo.id))
    assert (fleet.sent[-1].kind, fleet.sent[-1].task_id) == ("sync", synced.task_id)
    assert synced.task_id in synced.message and synced.status == "pending"


def test_work_on_an_archived_or_sourceless_repository_is_failed_precondition(fleet: Fleet, acme: int) -> None:
    """An archived repository takes no task; one without a source cannot be synced or migrated."""
    empty = fleet.repo(acme, "no-source")
    before = len(fleet.sent)
    assert fleet.refused("SyncRepository", pb.SyncRepositoryRequest(repository_id=empty.id)).code == \
        "FAILED_PRECONDITION"
    assert fleet.refused("MigrateRepository", pb.MigrateRepositoryRequest(repository_id=empty.id)).code == \
        "FAILED_PRECONDITION"

    repo = fleet.repo(acme, "old", source_url="https://github.com/acme/old.git")
    archived = fleet.call("ArchiveRepository", pb.ArchiveRepositoryRequest(repository_id=repo.id))
    assert archived.repository.status == "archived" and "archived" in archived.message
    before = len(fleet.sent)
    for method, request in [("SyncRepository", pb.SyncRepositoryRequest(repository_id=repo.id)),
                            ("MigrateRepository", pb.MigrateRepositoryRequest(repository_id=repo.id, force=True))]:
        failed = fleet.refused(method, request)
        assert failed.code == "FAILED_PRECONDITION" and "archived" in failed.message, method
    assert len(fleet.sent) == before
    again = fleet.call("ArchiveRepository", pb.ArchiveRepositoryRequest(repository_id=repo.id))
    assert again.repository.status == "archived"


def test_a_repository_shows_its_snapshot_with_rfc3339_times_and_no_credential(fleet: Fleet, acme: int) -> None:
    """GetRepository carries branches, head, counts and times as RFC 3339 UTC; an error that held a token
    comes back without it."""
    repo = fleet.repo(acme, "synced", source_url="https://github.com/acme/synced.git", credential="acme-token")
    when = datetime.datetime(2025, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    fleet.store.record_snapshot(repo.id, [BranchState("main", "a" * 40, True), BranchState("dev", "b" * 40, False)],
                                total_commits=42, last_commit_hash="a" * 40, default_branch="main", synced_at=when)
    fleet.store.set_status(repo.id, "failed", "fetch https://x:hunter2@github.com/acme/synced.git failed")
    shown = fleet.call("GetRepository", pb.GetRepositoryRequest(repository_id=repo.id)).repository
    assert shown.last_synced_at == "2025-03-04T05:06:07Z" and RFC3339.match(shown.last_synced_at)
    assert (shown.total_commits, shown.last_commit_hash, shown.default_branch) == (42, "a" * 40, "main")
    assert [(b.name, b.is_default) for b in shown.branches] == [("dev", False), ("main", True)]
    assert shown.credential == "acme-token" and shown.status == "failed"
    assert "hunter2" not in shown.error_message and "github.com" in shown.error_message


def test_list_repositories_pages_through_every_row_once_with_filters(fleet: Fleet) -> None:
    """ListRepositories over 120 rows in pages of 7: each row exactly once, filtered by organisation and
    status; a bad status, page size or token is INVALID_ARGUMENT."""
    one, two = fleet.org("paging-one"), fleet.org("paging-two")
    made: dict[int, tuple[int, str]] = {}
    for i in range(120):
        org = one if i % 3 else two
        repo = fleet.store.create_repository(NewRepository(f"r{i:03}", org))
        status = "active" if i % 2 else "failed"
        fleet.store.set_status(repo.id, status)
        made[repo.id] = (org, status)

    def every(org: int, status: str) -> list[int]:
        seen, token = [], ""
        while True:
            page = fleet.call("ListRepositories", pb.ListRepositoriesRequest(
                organisation_id=org, status=status, page_size=7, page_token=token))
            assert len(page.repositories) <= 7
            seen += [r.id for r in page.repositories]
            token = page.next_page_token
            if not token:
                return seen

    for org, status in [(one, ""), (two, ""), (one, "active"), (two, "failed")]:
        seen = every(org, status)
        expected = [i for i, (o, s) in made.items() if o == org and (not status or s == status)]
        assert seen == sorted(expected) and len(set(seen)) == len(seen)
    assert set(made) <= set(every(0, ""))
    for request in [pb.ListRepositoriesRequest(status="sleeping"), pb.ListRepositoriesRequest(page_size=501),
                    pb.ListRepositoriesRequest(page_token="not-a-token"),
                    pb.ListRepositoriesRequest(page_token=base64.urlsafe_b64encode(b"after:" + b"9" * 30).decode())]:
        assert fleet.refused("ListRepositories", request).code == "INVALID_ARGUMENT"


def test_a_task_the_broker_refuses_is_unavailable_and_marked_failed(fleet: Fleet, acme: int) -> None:
    """When send raises, the call is UNAVAILABLE naming the task, and the task is failed, not left pending."""
    repo = fleet.repo(acme, "broker-down", source_url="https://github.com/acme/x.git")
    fleet.fail_send.append("broker at redis://127.0.0.1:1 refused the connection")
    try:
        failed = fleet.refused("SyncRepository", pb.SyncRepositoryRequest(repository_id=repo.id))
    finally:
        fleet.fail_send.clear()
    assert failed.code == "UNAVAILABLE"
    task_id = re.search(r"task (\S+) was recorded", failed.message)
    assert task_id, failed.message
    task = fleet.call("GetSyncTask", pb.GetSyncTaskRequest(task_id=task_id.group(1)))
    assert task.status == "failed" and "not queued" in task.error_message


# Health, reflection


def test_health_checking_answers_serving_for_the_server_and_the_service(fleet: Fleet) -> None:
    """grpc.health.v1: SERVING for "" and for committer.fleet.v1.RepositoryService."""
    with grpc.insecure_channel(f"127.0.0.1:{fleet.server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "committer.fleet.v1.RepositoryService"):
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


def _reflected_services(port: int, metadata: tuple[tuple[str, str], ...] = (),
                        credentials: grpc.ChannelCredentials | None = None) -> list[str]:
    target = f"127.0.0.1:{port}"
    with (grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        answers = list(stub.ServerReflectionInfo(iter([request]), metadata=metadata, timeout=10))
    return [s.name for s in answers[0].list_services_response.service]


def test_server_reflection_lists_the_service_and_describes_it(fleet: Fleet) -> None:
    """Reflection lists RepositoryService and gives the file that defines it."""
    assert "committer.fleet.v1.RepositoryService" in _reflected_services(fleet.server.port)
    with grpc.insecure_channel(f"127.0.0.1:{fleet.server.port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="committer.fleet.v1.RepositoryService")
        answer = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))
    assert answer.file_descriptor_response.file_descriptor_proto


# The bearer token and TLS


def test_with_a_token_file_every_call_needs_the_bearer_token(tmp_path: Path) -> None:
    """With api_token_file: no token or a wrong one is UNAUTHENTICATED (for the service and reflection), the
    right one works, a rotated file's token replaces the old one at once (an emptied file keeps the last good
    one), and health checks stay open for probes."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    secured = start(tmp_path, api_token_file=token_file)
    address = f"127.0.0.1:{secured.server.port}"
    try:
        for token in ("", "wrong-token"):
            with Connection(address, token, timeout=10) as client, pytest.raises(CallFailed) as caught:
                client.call("ListOrganisations", pb.ListOrganisationsRequest())
            assert caught.value.code == "UNAUTHENTICATED"
            assert TOKEN not in caught.value.message
        with pytest.raises(grpc.RpcError) as refused:
            _reflected_services(secured.server.port)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert _reflected_services(secured.server.port, (("authorization", f"Bearer {TOKEN}"),))
        with Connection(address, TOKEN, timeout=10) as client:
            assert client.call("CreateOrganisation", pb.CreateOrganisationRequest(slug="tokened")).slug == "tokened"
        rotated = TOKEN + "-rotated"
        token_file.write_text(rotated + "\n")  # read again on the next call: no restart
        with Connection(address, TOKEN, timeout=10) as client, pytest.raises(CallFailed) as caught:
            client.call("ListOrganisations", pb.ListOrganisationsRequest())
        assert caught.value.code == "UNAUTHENTICATED"
        token_file.write_text("")  # emptied by mistake: the last good token stays
        with Connection(address, rotated, timeout=10) as client:
            assert client.call("ListOrganisations", pb.ListOrganisationsRequest()).organisations
        with grpc.insecure_channel(address) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        secured.client.close()
        secured.server.stop(0)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "committer fleet test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_with_a_certificate_the_api_speaks_tls_and_refuses_plaintext(tmp_path: Path) -> None:
    """tls_cert/tls_key: a client trusting the certificate is served; a plaintext client is not."""
    cert, key = _self_signed(tmp_path)
    secured = start(tmp_path, tls_cert=cert, tls_key=key)
    address = f"127.0.0.1:{secured.server.port}"
    try:
        with Connection(address, tls_ca=cert, timeout=10) as client:
            assert client.call("CreateOrganisation", pb.CreateOrganisationRequest(slug="tls")).slug == "tls"
        with Connection(address, timeout=5) as plain, pytest.raises(CallFailed) as caught:
            plain.call("ListOrganisations", pb.ListOrganisationsRequest())
        assert caught.value.code == "UNAVAILABLE"
        health = grpc.ssl_channel_credentials(cert.read_bytes())
        assert "committer.fleet.v1.RepositoryService" in _reflected_services(secured.server.port, credentials=health)
    finally:
        secured.client.close()
        secured.server.stop(0)


def test_a_taken_port_or_unreadable_token_file_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    """The API cannot listen where something else does, or start with a token file it cannot read."""
    made = db.engine(f"sqlite:///{tmp_path / 'fleet.db'}")
    schema.upgrade(made)
    store = Store(made, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            serve_grpc(FleetConfig(repos_dir=tmp_path, grpc=f"127.0.0.1:{port}"), store, lambda _task: None)
        assert caught.value.setting == "grpc"
    with pytest.raises(ConfigError) as caught:
        serve_grpc(FleetConfig(repos_dir=tmp_path, grpc="127.0.0.1:0", api_token_file=tmp_path / "missing"),
                   store, lambda _task: None)
    assert caught.value.setting == "api_token_file"

"""Files kept out by name: key-name rules match key files, not notes that mention them, and everything a
listed rule keeps out is in held_files with the rule (litter is left out without a word)."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from committer.commit.committer import Committer
from committer.core.settings import load_settings
from committer.git.setup import open_repository
from committer.policy.filters import PathFilter
from tests.conftest import DaemonProcess, Layout, committer, tree_files, wait_for

Start = Callable[..., DaemonProcess]

# what basic-memory wrote in the field: notes and a Keynote deck, none of them a key
NOTES = ("ops/id_rsa rotation runbook.md", "ops/id_ed25519 migration.md", "attachments/Quarterly review.key",
         "ops/id_rsa.md", "keys/id_ecdsa notes.txt", "license.key")
KEYS = {"home/.ssh/id_rsa": "name:id_rsa", "home/.ssh/id_rsa.pub": "name:id_rsa.pub",
        "id_ed25519": "name:id_ed25519", "id_ed25519-cert.pub": "name:id_ed25519-cert.pub",
        "id_ecdsa_sk": "name:id_ecdsa_sk", "certs/server.pem": "name:*.pem", "store.p12": "name:*.p12",
        ".env": "name:.env", "app/.env.local": "name:.env.*", ".netrc": "name:.netrc"}
LITTER = ("n.md.swp", ".n.md.swp", "n.md~", "4913", ".DS_Store", "x.tmp")
PEM_KEY = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
           "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----\n")


def make(layout: Layout, **flags: object) -> Committer:
    settings = load_settings(flags={"data_dir": str(layout.data), "git_dir": str(layout.git_dir), **flags})
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    return Committer(settings, open_repository(settings, pfilter), pfilter)


def write(root: Path, rel: str, data: bytes | str = "x") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)


def keynote(path: Path) -> None:
    """A Keynote deck is a zip archive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as deck:
        deck.writestr("Index/Document.iwa", os.urandom(2048))


@pytest.mark.parametrize("name", NOTES)
def test_notes_that_mention_key_names_are_not_kept_out(tmp_path: Path, name: str) -> None:
    f = PathFilter(tmp_path)
    assert not f.ignored(name) and f.rule(name) is None


@pytest.mark.parametrize(("name", "rule"), sorted(KEYS.items()))
def test_key_and_secret_files_are_kept_out_with_their_rule(tmp_path: Path, name: str, rule: str) -> None:
    f = PathFilter(tmp_path)
    assert f.ignored(name) and f.rule(name) == rule and f.kept_out(name) == (name, rule)


@pytest.mark.parametrize("name", LITTER)
def test_litter_is_ignored_but_never_listed(tmp_path: Path, name: str) -> None:
    f = PathFilter(tmp_path)
    assert f.ignored(name) and f.rule(name) is None and f.kept_out(name) is None


def test_a_folder_kept_out_by_bmignore_is_one_entry(tmp_path: Path) -> None:
    (tmp_path / ".bmignore").write_text("node_modules/\n*.log\n!keep.log\n")
    f = PathFilter(tmp_path)
    assert f.kept_out("node_modules/a/b/c.js") == ("node_modules", "name:node_modules/")
    assert f.kept_out("logs/run.log") == ("logs/run.log", "name:*.log")
    assert not f.ignored("keep.log") and f.kept_out(".git/index") is None


@pytest.mark.usefixtures("reconcile_way")
def test_a_reconcile_commits_the_notes_and_lists_everything_a_rule_keeps_out(layout: Layout) -> None:
    write(layout.data, "first.md")
    p = make(layout, ignore=["*.bak"])
    p.reconcile(op="init")
    for name in NOTES:
        if name.endswith(".key"):
            keynote(layout.data / name)
        else:
            write(layout.data, name, f"# {name}\nrotate the id_rsa key yearly\n")
    for name in (*KEYS, *LITTER, "old.bak"):
        write(layout.data, name)
    write(layout.data, ".bmignore", "node_modules/\n")
    for i in range(300):
        write(layout.data, f"node_modules/pkg{i}/index.js")
    write(layout.data, "secret.key", PEM_KEY)
    assert p.pfilter.refresh()  # what the daemon does when it sees .bmignore change
    with capture_logs() as logs:
        p.reconcile()
        p.reconcile()  # listed again, logged once
    assert tree_files(layout.git_dir) == {"first.md", ".bmignore", *NOTES}
    held = dict(p.held.reasons)
    assert held == {**KEYS, "old.bak": "name:*.bak", "node_modules": "name:node_modules/",
                    "secret.key": "looks like it contains a secret (private-key)"}
    skips = [e["path"] for e in logs if e["event"] == "skip"]
    assert sorted(skips) == sorted(held)


def test_a_batch_lists_a_new_secret_file_and_forgets_it_once_deleted(layout: Layout) -> None:
    write(layout.data, "a.md")
    p = make(layout)
    p.reconcile(op="init")
    write(layout.data, "deploy/.env", "TOKEN=1")
    write(layout.data, "note.md.swp")
    p.commit(["deploy/.env", "note.md.swp"])
    assert p.held.listing() == [{"path": "deploy/.env", "reason": "name:.env"}]
    (layout.data / "deploy" / ".env").unlink()
    p.commit(["deploy/.env"])
    assert p.held.listing() == []


def status(layout: Layout) -> dict[str, Any]:
    proc = committer("status", "--json", *layout.args())
    assert proc.returncode == 0, proc.stderr
    value = json.loads(proc.stdout)
    assert isinstance(value, dict)
    return value


@pytest.mark.integration
@pytest.mark.parametrize("observer", ["inotify", "poll"])
def test_the_daemon_lists_files_kept_out_by_name_and_commits_notes_that_mention_keys(
    layout: Layout, start_daemon: Start, observer: str
) -> None:
    write(layout.data, "a.md")
    write(layout.data, "id_rsa")  # there before the daemon: the start-up reconcile lists it
    assert committer("init", *layout.args()).returncode == 0
    daemon = start_daemon("--observer", observer, "--poll-interval", "200ms")
    write(layout.data, "ops/id_rsa rotation runbook.md", "rotate yearly")
    keynote(layout.data / "attachments" / "Quarterly review.key")
    write(layout.data, ".env", "TOKEN=1")
    write(layout.data, ".note.md.swp")
    wait_for(lambda: {"ops/id_rsa rotation runbook.md", "attachments/Quarterly review.key"}
             <= tree_files(layout.git_dir), what="the notes committed")

    def listed() -> dict[str, str]:
        return {item["path"]: item["reason"] for item in status(layout)["held_files"]}

    wait_for(lambda: listed() == {"id_rsa": "name:id_rsa", ".env": "name:.env"}, what="the key files listed")
    (layout.data / ".env").unlink()
    wait_for(lambda: listed() == {"id_rsa": "name:id_rsa"}, what=".env gone from held_files")
    daemon.stop()
    assert tree_files(layout.git_dir) == {"a.md", "ops/id_rsa rotation runbook.md",
                                          "attachments/Quarterly review.key"}


def test_held_files_stay_bounded_with_a_count_of_the_rest(layout: Layout) -> None:
    from committer.commit.changes import Skipped
    from committer.commit.held import LISTED, HeldFiles

    held = HeldFiles()
    held.note([Skipped(f"d{i:05}/.env", "name:.env") for i in range(LISTED + 250)])
    listing = held.listing()
    assert len(listing) == LISTED + 1 and listing[-1]["more"] == 250 and "250 more" in listing[-1]["reason"]
    again = HeldFiles()
    again.keep(listing)  # what a restart reads back from the state file: the count is not a path
    assert len(again) == LISTED and "" not in again


def test_a_pass_logs_the_first_hundred_skips_then_counts_the_rest() -> None:
    from committer.commit.changes import Skipped
    from committer.commit.held import WARNED, HeldFiles

    held = HeldFiles()
    with capture_logs() as logs:
        held.note([Skipped(f"logs/{i:05}.log", "name:*.log") for i in range(WARNED + 40)])
        held.note([Skipped(f"logs/{i:05}.log", "name:*.log") for i in range(WARNED + 40)])  # known: silent
    assert len([e for e in logs if e["event"] == "skip"]) == WARNED
    assert [(e["reason"], e["count"]) for e in logs if e["event"] == "skip_more"] == [("name:*.log", 40)]
    assert len(held) == WARNED + 40


def _der_keys() -> dict[str, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    der, none = serialization.Encoding.DER, serialization.NoEncryption()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "rsa-pkcs1.key": rsa_key.private_bytes(der, serialization.PrivateFormat.TraditionalOpenSSL, none),
        "rsa-pkcs8.der": rsa_key.private_bytes(der, serialization.PrivateFormat.PKCS8, none),
        "ec-sec1.key": ec_key.private_bytes(der, serialization.PrivateFormat.TraditionalOpenSSL, none),
        "ed25519.key": ed25519.Ed25519PrivateKey.generate().private_bytes(der, serialization.PrivateFormat.PKCS8,
                                                                          none),
    }


def test_der_private_keys_are_held_by_content_and_other_binaries_are_not(layout: Layout, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from committer.policy.secrets import find_secret

    keys = _der_keys()
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for name, data in keys.items():
        assert find_secret(data) == "private-key", name
    keynote(tmp_path / "deck.key")
    assert find_secret((tmp_path / "deck.key").read_bytes()) is None
    assert find_secret(public) is None and find_secret(b"\x30\x03\x02\x01\x00") is None  # too short to matter
    write(layout.data, "a.md")
    p = make(layout)
    p.reconcile(op="init")
    for name, data in keys.items():
        write(layout.data, f"keys/{name}", data)
    keynote(layout.data / "keys" / "Quarterly review.key")
    write(layout.data, "keys/public.der", public)
    p.reconcile()
    assert tree_files(layout.git_dir) == {"a.md", "keys/Quarterly review.key", "keys/public.der"}
    assert set(p.held.reasons) == {f"keys/{name}" for name in keys}

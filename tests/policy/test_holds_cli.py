"""`committer allow-secret` and `committer put-back` without a daemon: the same operations the pages'
buttons run, recorded in the trailer, the log and the events outbox."""

from __future__ import annotations

import json
import shutil

import pytest

from committer.policy import secrets
from tests.conftest import Layout, committer, git, tree_files

pytestmark = pytest.mark.integration
TOKEN = "ghp_" + "Zq8Lm3Rt7Vx1Bn5Kc9Hd2Fg6Js4Pw0Ye8Ua3M"[:36]


def test_locate_names_the_kind_and_line_never_the_secret() -> None:
    assert secrets.locate(f"a\nb\n\nkey: {TOKEN}\n".encode()) == secrets.Found("github-token", 4)
    assert secrets.locate(b"the token is in the vault\n") is None
    assert secrets.described("github-token").startswith("GitHub classic token")


def test_allow_secret_commits_the_file_once_and_records_it(layout: Layout) -> None:
    assert committer("init", *layout.args()).returncode == 0
    (layout.data / "docs").mkdir()
    (layout.data / "docs" / "example.md").write_text(f"# Example\n\n{TOKEN}\n")
    looked = committer("allow-secret", "docs/example.md", "--dry-run", *layout.args())
    assert looked.returncode == 0, looked.stderr
    assert "docs/example.md: GitHub classic token" in looked.stdout and "(github-token) at line 3" in looked.stdout
    assert TOKEN not in looked.stdout + looked.stderr
    assert "docs/example.md" not in tree_files(layout.git_dir)  # a dry run commits nothing
    done = committer("allow-secret", "docs/example.md", "--exec-hook", "true", *layout.args())
    assert done.returncode == 0, done.stderr
    assert "committed docs/example.md as it is" in done.stdout
    assert "docs/example.md" in tree_files(layout.git_dir)
    meta = json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)"))
    assert meta["allowed_secret"] == "docs/example.md" and meta["op"] == "allow-secret" and meta["added"] == 1
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    allowed = [e for e in logged if e.get("event") == "secret_allowed"]
    assert allowed and allowed[0]["path"] == "docs/example.md" and allowed[0]["line"] == 3
    assert TOKEN not in done.stderr
    outbox = (layout.git_dir / "committer" / "outbox" / "events.log").read_text()
    commits = [json.loads(line.split("\t", 4)[4]) for line in outbox.splitlines() if "\tgit_commit\t" in line]
    assert commits[-1]["op"] == "allow-secret" and commits[-1]["paths"]["added"] == ["docs/example.md"]
    again = committer("allow-secret", "docs/nothing.md", *layout.args())
    assert again.returncode == 2 and "docs/nothing.md is not in the data directory" in again.stderr


def test_put_back_writes_held_deletions_back_and_refuses_an_empty_data_dir(layout: Layout) -> None:
    (layout.data / "kb").mkdir()
    for n in range(5):
        (layout.data / "kb" / f"{n}.md").write_text(f"{n}\n")
    (layout.data / "keep.md").write_text("keep\n")
    env = {"COMMITTER_MAX_DELETE": "2"}
    assert committer("init", *layout.args(), env=env).returncode == 0
    nothing = committer("put-back", *layout.args(), env=env)
    assert nothing.returncode == 1 and "no deletions are on hold: there is nothing to put back" in nothing.stderr
    shutil.rmtree(layout.data / "kb")
    head = git(layout.git_dir, "rev-parse", "HEAD")
    done = committer("put-back", *layout.args(), env=env)  # its reconcile holds the deletion, then puts back
    assert done.returncode == 0, done.stderr
    assert "put back 5 file(s) from the last commit; nothing was committed" in done.stdout
    assert sorted(p.name for p in (layout.data / "kb").iterdir()) == [f"{n}.md" for n in range(5)]
    assert git(layout.git_dir, "rev-parse", "HEAD") == head
    assert json.loads(committer("status", "--json", *layout.args()).stdout)["held"] is None
    shutil.rmtree(layout.data / "kb")
    (layout.data / "keep.md").unlink()
    empty = committer("put-back", *layout.args(), env=env)
    assert empty.returncode == 1 and "the data folder is empty or missing (unmounted?)" in empty.stderr
    assert list(layout.data.iterdir()) == []  # nothing is written into what may be an empty mount point
    assert json.loads(committer("status", "--json", *layout.args()).stdout)["held"]["reason"] == "data_dir_empty"


def test_the_secret_allow_list_lets_matching_files_in_unscanned(layout: Layout) -> None:
    from tests.commit.test_pipeline import make_pipeline, write

    pipeline = make_pipeline(layout, secret_allow="docs/examples/,fixtures/*.json")
    write(layout, "docs/examples/token.md", f"{TOKEN}\n")
    write(layout, "fixtures/api.json", f'{{"token": "{TOKEN}"}}\n')
    write(layout, "notes/token.md", f"{TOKEN}\n")
    pipeline.commit([""])
    assert tree_files(layout.git_dir) == {"docs/examples/token.md", "fixtures/api.json"}
    assert pipeline.held.reasons == {"notes/token.md": "looks like it contains a secret (github-token)"}

"""What never goes in: defaults, configured patterns and .bmignore."""

from pathlib import Path

import pytest

from committer.policy.filters import PathFilter


@pytest.mark.parametrize("path", [
    ".git", "a/.git/config", ".notes.md.swp", "notes.md~", ".#notes.md", "x.tmp", "dl.partial",
    ".DS_Store", "sub/Thumbs.db", ".env", ".env.local", "keys/server.pem", "id_rsa", "id_ed25519.pub",
    "credentials.json", ".netrc", ".bmmeta",
])
def test_default_ignores(tmp_path: Path, path: str) -> None:
    assert PathFilter(tmp_path).ignored(path)


@pytest.mark.parametrize(
    "path", ["notes/a.md", "token-notes.md", "environment.md", "keynote.md", ".bmignore"]
)
def test_ordinary_files_are_not_ignored(tmp_path: Path, path: str) -> None:
    assert not PathFilter(tmp_path).ignored(path)


def test_bmignore_is_reread_when_it_changes(tmp_path: Path) -> None:
    f = PathFilter(tmp_path, extra=["*.log"])
    assert f.ignored("x.log") and not f.ignored("build/out.bin")
    (tmp_path / ".bmignore").write_text("build/\n!keep.tmp\n")
    assert f.refresh()
    assert f.ignored("build/out.bin") and f.ignored("build", is_dir=True)
    assert not f.refresh()
    (tmp_path / ".bmignore").unlink()
    assert f.refresh() and not f.ignored("build/out.bin")


def test_the_combined_matcher_agrees_with_pathspec(tmp_path: Path) -> None:
    import pathspec

    from committer.policy.filters import DEFAULT_IGNORES

    fast = PathFilter(tmp_path, extra=["build/", "*.log", "docs/**/draft-*"])
    slow = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_IGNORES, "build/", "*.log", "docs/**/draft-*"])
    assert fast._base_regex is not None
    samples = ["a.md", "x.swp", "dir/.x.md.swp", "build", "build/out", "src/build/o.bin", "a.log", "a.log.md",
               "docs/a/b/draft-1.md", "docs/draft.md", ".env", ".envy", "notes/.env.local", "k.pem", "pem",
               "#x#", ".#lock", "Thumbs.db", "thumbs.db", "a/.DS_Store", "id_rsa.pub", "my_id_rsa"]
    for sample in samples:
        for is_dir in (False, True):
            candidate = sample + "/" if is_dir else sample
            assert fast.ignored(sample, is_dir) == bool(slow.match_file(candidate)), candidate


def test_a_negation_in_the_configured_patterns_falls_back_to_pathspec(tmp_path: Path) -> None:
    f = PathFilter(tmp_path, extra=["*.log", "!keep.log"])
    assert f._base_regex is None
    assert f.ignored("x.log") and not f.ignored("keep.log")

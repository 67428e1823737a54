"""The deployment files' cross-references point at something that exists.

In deploy/, systemd/, the Containerfile and the manual's Operating page: every relative Markdown
link (and its #anchor), every repository path named in the text (`deploy/README.md`,
`../systemd/README.md`, `tests/deploy/...`), every "see X" naming a file, and every section named
after a file (`docs/operating.md, "systemd"`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTENSIONS = "md|py|yaml|yml|service|toml|sh|json"
# A relative Markdown link: [text](target) or [text](target#anchor), not a URL.
LINK = re.compile(r"\]\((?![a-z]+:)([^)\s#]*)(?:#([^)\s]+))?\)")
# A repository path in prose: at least one slash, a known extension, not part of an absolute path or a URL.
PATH = re.compile(rf"(?<![\w/$~.@:%{{-])((?:\.\.?/)*(?:[\w.-]+/)+[\w.-]+\.(?:{EXTENSIONS}))\b")
# "see X" where X is a bare file name (with an extension).
SEE = re.compile(rf"\b[Ss]ee (?:the )?`?((?:[\w.-]+/)*[\w.-]+\.(?:{EXTENSIONS}))`?")
# "the main README" in prose: its sections move; name the file and the section, or the manual's page.
PROSE_README = re.compile(r"\b(?:main|top-level|top level) README\b")
# A section named after its file: `docs/operating.md`, "Containers and Kubernetes" (quotes or backticks optional).
SECTION = re.compile(r"`?((?:[\w.-]+/)*[\w.-]+\.md)`?(?:'s)?,? (?:section )?\"([^\"]+)\"")


def sources() -> list[Path]:
    found = [ROOT / "Containerfile", ROOT / "docs" / "operating.md"]
    for top in ("deploy", "systemd"):
        found += [p for p in sorted((ROOT / top).rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    return found


def resolve(source: Path, target: str) -> Path | None:
    """The file target names, relative to the source's folder or to the repository's root."""
    for base in (source.parent, ROOT):
        candidate = (base / target).resolve()
        if candidate.exists():
            return candidate
    return None


def in_repository(source: Path, target: str) -> bool:
    """Whether a path in prose names a file of this repository (its first folder is one), not a user's file."""
    first = target.split("/")[0]
    return first in (".", "..") or (source.parent / first).exists() or (ROOT / first).exists()


def slug(heading: str) -> str:
    """The anchor mkdocs and GitHub make of a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"\s+", "-", text).strip("-")


def headings(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.lstrip("#").strip() for line in lines if re.match(r"#{1,6} ", line)}


def references(source: Path) -> list[tuple[str, str | None]]:
    """(target, anchor or section) for every cross-reference in the file."""
    text = source.read_text(encoding="utf-8")
    found: list[tuple[str, str | None]] = []
    for match in LINK.finditer(text):
        found.append((match[1] or source.name, "#" + match[2] if match[2] else None))
    found += [(m[1], None) for m in PATH.finditer(text) if in_repository(source, m[1])]
    found += [(m[1], None) for m in SEE.finditer(text)]
    found += [(m[1], m[2]) for m in SECTION.finditer(re.sub(r"\s+", " ", text))]
    return found


@pytest.mark.parametrize("source", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cross_reference_points_at_something_that_exists(source: Path) -> None:
    broken = []
    for target, where in references(source):
        path = resolve(source, target)
        if path is None:
            broken.append(f"{target}: no such file")
        elif where and where.startswith("#"):
            if where[1:] not in {slug(h) for h in headings(path)}:
                broken.append(f"{target}{where}: no such heading")
        elif where and where not in headings(path):
            broken.append(f'{target}, "{where}": no such section')
    flat = re.sub(r"\s+", " ", source.read_text(encoding="utf-8"))
    broken += [f"{m[0]!r}: name the file (README.md, \"Section\") or a page of docs/"
               for m in PROSE_README.finditer(flat)]
    assert not broken, f"{source.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_checker_sees_a_broken_reference(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('[a](missing.md), see tests/nowhere.py, docs/operating.md, "No such part", notes/a.md\n')
    targets = references(page)
    assert ("missing.md", None) in targets and ("tests/nowhere.py", None) in targets
    assert ("docs/operating.md", "No such part") in targets
    assert ("notes/a.md", None) not in targets  # a user's file in an example, not the repository's
    assert resolve(page, "missing.md") is None and "No such part" not in headings(ROOT / "docs" / "operating.md")

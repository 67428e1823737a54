"""One way to run git: every process starts in git/runner.py, and GitPython (whose git is the runner's,
see test_gitpython.py) is imported in git/gitpython.py only."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "committer"
STARTS = {("subprocess", name) for name in ("run", "Popen", "call", "check_call", "check_output", "getoutput")} | {
    ("os", name) for name in ("system", "popen", "posix_spawn", "posix_spawnp", "fork", "execv", "execvp",
                              "execve", "execvpe", "spawnv", "spawnvp")}


def modules() -> dict[str, ast.Module]:
    return {p.relative_to(PACKAGE).as_posix(): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_process_starts_in_the_runner() -> None:
    found = []
    for rel, tree in modules().items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and (node.value.id, node.attr) in STARTS and not _annotation_only(node, tree)):
                found.append(f"{rel}:{node.lineno} {node.value.id}.{node.attr}")
    assert [f for f in found if not f.startswith("git/runner.py:")] == []


def _annotation_only(node: ast.Attribute, tree: ast.Module) -> bool:
    """`subprocess.Popen[bytes]` as a type names a process, it does not start one."""
    return any(isinstance(parent, ast.Subscript) and parent.value is node for parent in ast.walk(tree))


def test_gitpython_is_imported_in_its_home_only() -> None:
    wrong = []
    for rel, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            if any(name.split(".")[0] == "git" for name in names):
                wrong.append(rel)
    assert sorted(set(wrong)) == ["git/gitpython.py"]

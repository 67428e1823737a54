"""The package's layers: each subpackage imports only from those below it, nothing imports in a circle,
and the libraries that have one home are imported only there (docs/architecture.md)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "committer"
ORDER = ("core", "policy", "git", "watch", "commit", "sync", "ops", "serve", "daemon", "fleet", "cli")
HOMES = {  # a library -> the one module that may import it; the others import what they need from there
    "watchdog": "watch/inotify.py",
    "prometheus_client": "serve/metrics.py",
    "typer": "cli/app.py",
    "rich": "cli/progress.py",
    "uvicorn": "serve/web.py",
    "anyio": "serve/work.py",
    "starlette": "serve/web.py",
    "jinja2": "serve/pages.py",
    "markdown_it": "serve/markdown.py",
    "mcp": "serve/mcp.py",
    "httpx": "core/web.py",
    "jwt": "sync/github.py",
    "tenacity": "core/retry.py",
    "pathspec": "policy/filters.py",
    "structlog": "core/logs.py",
    "git": "git/gitpython.py",
    "sqlalchemy": "fleet/db.py",
    "alembic": "fleet/schema.py",
    "celery": "fleet/queue.py",
    "kombu": "fleet/queue.py",
    "grpc": "fleet/rpc.py",
    "grpc_health": "fleet/rpc.py",
    "grpc_reflection": "fleet/rpc.py",
    "google": "fleet/rpc.py",
}
# Written by tools in their own format: grpcio-tools' modules from fleet.proto, Alembic's revisions.
GENERATED = ("fleet/fleet_pb2.py", "fleet/fleet_pb2_grpc.py", "fleet/migrations/")
MAX_MODULE_LINES, MAX_CLASS_LINES = 400, 300


@functools.cache
def modules() -> dict[str, ast.Module]:
    return {rel: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))
            if not (rel := path.relative_to(PACKAGE).as_posix()).startswith(GENERATED)}


def layer(rel: str) -> str | None:
    return rel.split("/", 1)[0] if "/" in rel else None


def module_name(rel: str) -> str:
    return "committer." + rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def imported(tree: ast.Module, *, run_only: bool = False) -> set[str]:
    """Dotted names a module imports: every import anywhere in it (functions, TYPE_CHECKING blocks), or
    with run_only those that can run (at import or later, in a function), leaving out TYPE_CHECKING blocks."""
    names: set[str] = set()
    for node in _runs(tree) if run_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _runs(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        return [n for child in node.orelse for n in _runs(child)]
    return [node, *(n for child in ast.iter_child_nodes(node) for n in _runs(child))]


def test_every_module_lives_in_a_layer() -> None:
    stray = [rel for rel in modules() if layer(rel) is None and rel not in ("__init__.py", "__main__.py")]
    assert not stray, f"modules outside the layers: {stray}"
    assert {rel.split("/")[0] for rel in modules() if "/" in rel} == set(ORDER)


def test_no_layer_imports_one_above_it_not_even_lazily() -> None:
    wrong = []
    for rel, tree in modules().items():
        own = layer(rel)
        if own is None:
            continue
        for name in imported(tree):
            parts = name.split(".")
            above = parts[0] == "committer" and len(parts) > 1 and parts[1] in ORDER[ORDER.index(own) + 1 :]
            if above:
                wrong.append(f"{rel} imports {name} ({parts[1]} is above {own})")
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_in_a_circle_not_even_lazily() -> None:
    known = {module_name(rel): rel for rel in modules()}
    graph: dict[str, set[str]] = {}
    for rel, tree in modules().items():
        graph[module_name(rel)] = {n for n in imported(tree, run_only=True) if n in known} - {module_name(rel)}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            assert cycle is None, " -> ".join(cycle)


def test_each_library_with_a_home_is_imported_only_there() -> None:
    wrong = []
    for rel, tree in modules().items():
        for name in imported(tree):
            top = name.split(".")[0]
            if top in HOMES and rel != HOMES[top]:
                wrong.append(f"{rel} imports {name} (only {HOMES[top]} may)")
    assert not wrong, "\n".join(wrong)


def test_the_layer_order_here_is_the_one_the_architecture_page_draws() -> None:
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    drawn = [line.split("/")[0].strip() for line in page.splitlines() if line.startswith("  ") and "/ " in line[:12]]
    assert tuple(drawn) == ORDER


def test_no_module_is_over_400_lines() -> None:
    long = {rel: n for rel in modules() if (n := len((PACKAGE / rel).read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by what they do): {long}"


def test_no_class_is_over_300_lines() -> None:
    long = {f"{rel}:{node.name}": size for rel, tree in modules().items() for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and (size := (node.end_lineno or 0) - node.lineno + 1) > MAX_CLASS_LINES}
    assert not long, f"classes over {MAX_CLASS_LINES} lines: {long}"

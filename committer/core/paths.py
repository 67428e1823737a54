"""Relative paths of the data directory: their parents, and folding many into their directories."""

from __future__ import annotations

# Above this many pending paths, paths are folded into their parent directories: the commit step
# walks a directory candidate, so nothing is lost, and memory stays bounded in a huge burst.
COALESCE_ABOVE = 50_000


def parent(path: str) -> str:
    """The directory holding path ('' for the top)."""
    return path.rsplit("/", 1)[0] if "/" in path else ""


def coalesce(paths: set[str], limit: int = COALESCE_ABOVE) -> set[str]:
    """Fold the deepest paths into their directories until at most `limit` remain."""
    while len(paths) > limit:
        deepest = max(p.count("/") for p in paths)
        if deepest == 0:
            return {""}
        paths = {parent(p) if p.count("/") == deepest else p for p in paths}
        paths = {p for p in paths if not covered(p, paths)}
    return paths


def covered(path: str, paths: set[str]) -> bool:
    """True when a directory above path is in paths (it is walked anyway)."""
    if "" in paths and path != "":
        return True
    while "/" in path:
        path = parent(path)
        if path in paths:
            return True
    return False

"""Deterministic trees of small files (1-4 KB, 50 per directory) and new content for chosen files."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

FILES_PER_DIR = 50
MIN_SIZE, MAX_SIZE = 1024, 4096


@lru_cache(maxsize=1)
def corpus() -> bytes:
    """About 2 MB of word-like text: files compress like notes do, not like random bytes."""
    rng = random.Random(20240601)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(5000)]
    lines = []
    for _ in range(30000):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(6, 14))))
    return ("\n".join(lines) + "\n").encode()


class Tree:
    """`count` files in count/50 directories under `data`, grouped in about sqrt(dirs) top folders."""

    def __init__(self, data: Path, count: int) -> None:
        self.data = data
        self.count = count
        self.dirs = max(1, count // FILES_PER_DIR)
        self.per_group = max(1, math.ceil(self.dirs / max(1, round(math.sqrt(self.dirs)))))
        self.rev = 0

    def next_rev(self) -> int:
        """A revision number no file of this tree has had yet."""
        self.rev += 1
        return self.rev

    def rel(self, index: int) -> str:
        """The relative path of file `index`."""
        directory = min(index // FILES_PER_DIR, self.dirs - 1)
        return f"g{directory // self.per_group:03d}/d{directory:05d}/f{index:06d}.md"

    def content(self, index: int, rev: int) -> bytes:
        """Revision `rev` of file `index`: 1-4 KB, unique, the same on every run."""
        rng = random.Random(index * 1_000_003 + rev)
        size = rng.randint(MIN_SIZE, MAX_SIZE)
        header = f"# file {index} revision {rev}\n".encode()
        text = corpus()
        start = rng.randrange(len(text) - size)
        return header + text[start : start + size - len(header)]

    def build(self) -> None:
        """Write every file at revision 0."""
        made: set[str] = set()
        for index in range(self.count):
            rel = self.rel(index)
            parent = rel.rsplit("/", 1)[0]
            if parent not in made:
                os.makedirs(self.data / parent, exist_ok=True)
                made.add(parent)
            with open(self.data / rel, "wb") as handle:
                handle.write(self.content(index, 0))

    def pick(self, k: int, offset: int = 0) -> list[int]:
        """k files spread evenly over the tree (so over k directories when k <= dirs)."""
        k = min(k, self.count)
        return [(offset + (i * self.count) // k) % self.count for i in range(k)]

    def modify(self, indices: Iterable[int]) -> list[str]:
        """Rewrite the files with new content (a fresh revision); returns their relative paths."""
        rev = self.next_rev()
        rels = []
        for index in indices:
            rel = self.rel(index)
            with open(self.data / rel, "wb") as handle:
                handle.write(self.content(index, rev))
            rels.append(rel)
        return rels

"""What git stores: blob ids, file modes, tree entries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MODE_FILE, MODE_EXEC, MODE_LINK, MODE_GITLINK = "100644", "100755", "120000", "160000"


def blob_id(data: bytes) -> str:
    """The id git gives a blob with this content."""
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class TreeEntry:
    """One file of a tree: mode (100644, 100755, 120000, 160000) and blob id."""

    mode: str
    sha: str

"""TODO"""

from __future__ import annotations

import hashlib

MODE_FILE, MODE_EXEC, MODE_LINK = "100644", "100755", "120000"


def blob_id(data: bytes) -> str:
    """The id git gives a blob with this content."""
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()

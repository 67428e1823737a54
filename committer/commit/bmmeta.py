"""The data directory's .bmmeta (JSON a sync layer writes: who or what made the change) for the trailer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from committer.core import fsio, logs
from committer.policy.filters import BMMETA

log = logs.get(__name__)

# A .bmmeta larger than this goes into no trailer (it describes who made a change, not the change).
BMMETA_MAX = 1 << 20


class BmMeta:
    """Reads .bmmeta for each commit; invalid JSON is reported once per version of the file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._warned: int | None = None

    def read(self) -> Any:
        """The parsed JSON, or None. Read without following a symlink: a .bmmeta linked to a file outside is
        not read."""
        raw = fsio.read_beneath(self.data_dir, BMMETA, BMMETA_MAX + 1)
        if raw is None:
            return None
        try:
            if len(raw) > BMMETA_MAX:
                raise ValueError(f"larger than {BMMETA_MAX} bytes")
            return json.loads(raw)
        except ValueError as exc:
            stamp = hash(raw)
            if stamp != self._warned:
                self._warned = stamp
                log.warning("bmmeta_invalid", path=BMMETA, error=str(exc))
            return None

"""A bare watchdog inotify observer on a tree, for reference: prints when it is ready, then idles.

Usage: python watch_probe.py ROOT. Prints one JSON line {"ready": <epoch>, "schedule_s": ...} once
the observer watches the whole tree, then waits until its stdin closes.
"""

from __future__ import annotations

import json
import sys
import time

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver


class Counter(FileSystemEventHandler):
    """Counts events, the least a handler can do."""

    def __init__(self) -> None:
        super().__init__()
        self.events = 0

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.events += 1


def main() -> None:
    root = sys.argv[1]
    started = time.perf_counter()
    observer = InotifyObserver()
    observer.daemon = True
    observer.schedule(Counter(), root, recursive=True)
    observer.start()
    schedule_s = time.perf_counter() - started
    print(json.dumps({"ready": time.time(), "schedule_s": schedule_s}), flush=True)
    sys.stdin.read()
    observer.stop()
    observer.join(timeout=5)


if __name__ == "__main__":
    main()

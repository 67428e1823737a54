"""`python -m committer.fleet up|api|worker|beat [--concurrency N]`: one fleet process, configured by its
environment (GIT_REPOS_DIR, COMMITTER_FLEET_DB, CELERY_BROKER_URL, ...): how `up` starts its children, and
a way to run a process without the CLI."""

from __future__ import annotations

import argparse
import os
import sys

from committer.core.errors import CommitterError
from committer.fleet import config, processes, rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m committer.fleet")
    parser.add_argument("role", choices=("up", "api", "worker", "beat"))
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        processes.configure_logs(os.environ)
        loaded = config.load({}, os.environ)
        if args.role == "up":
            return processes.up(loaded, args.concurrency)
        if args.role == "worker":
            return processes.worker(loaded, args.concurrency)
        return int(getattr(processes, args.role)(loaded))
    except (CommitterError, rules.Invalid) as exc:
        print(f"committer fleet {args.role}: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, CommitterError) else 2


if __name__ == "__main__":
    sys.exit(main())

"""Soak run of the randomized kill test: many kill -9 under continuous writes, then the checks.

    python tests/faults/soak.py --kills 100 --duration 600 --files 1000
    python tests/faults/soak.py --kills 6 --duration 60 --seed 1234   # replay a seed

A writer thread creates, rewrites, renames and deletes files (bursts, directory moves, symlinks,
mode changes, editor-style saves, ignored litter) in a fresh data directory while `committer run`
(pushing to a file:// remote) is SIGKILLed at random moments - during start-up, while idle, and
aimed at a `git fast-import` or a push in flight - and restarted each time. At the end the writer
stops and the daemon must reach quiescence: HEAD's tree equals the data directory (paths, content,
modes), the remote has the branch, `git fsck --full --strict` is clean, no git lock is left.

Prints kills survived, files written, files lost (must be 0), fsck, duration; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.faults.harness import ChaosConfig, run_chaos, seed_from_env  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kill -9 this many times (default 20)")
    parser.add_argument("--duration", type=float, default=120.0,
                        help="seconds of continuous writes; the kills are spread over them (default 120)")
    parser.add_argument("--seed", type=int, default=None,
                        help="replay a run (default: COMMITTER_FAULT_SEED, else random)")
    parser.add_argument("--files", type=int, default=400,
                        help="about how many files the writer keeps in the directory (default 400)")
    parser.add_argument("--checkpoint-every", type=int, default=0, metavar="K",
                        help="also pause the writer every K kills and check HEAD == disk (default: end only)")
    parser.add_argument("--quiesce-timeout", type=float, default=120.0,
                        help="how long the daemon may take to commit everything at the end (default 120)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="work here (must not exist) instead of a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory even when all is well")
    args = parser.parse_args(argv)
    if args.kills < 1 or args.duration <= 0:
        parser.error("--kills must be at least 1 and --duration positive")

    seed = args.seed if args.seed is not None else seed_from_env()
    root = args.dir or Path(tempfile.mkdtemp(prefix="committer-soak-"))
    root.mkdir(parents=True, exist_ok=args.dir is None)
    print(f"soak: seed {seed}, {args.kills} kills over {args.duration:g}s, ~{args.files} files, in {root}",
          flush=True)
    config = ChaosConfig(seed=seed, kills=args.kills, duration=args.duration, max_files=args.files,
                         quiesce_timeout=args.quiesce_timeout, checkpoint_every=args.checkpoint_every)
    result = run_chaos(config, root, say=lambda line: print(line, flush=True))
    print()
    print(result.summary())
    if result.ok and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"work directory kept: {root}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

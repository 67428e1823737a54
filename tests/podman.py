"""Real podman for the image and systemd tests: a store of its own, and cached Debian roots and wheels.

No image registry is needed. The base image is a Debian root made by `mmdebstrap` and imported;
committer and its dependencies are wheels built here and installed with `pip --no-index`. What is
expensive is made once and kept under the cache directory (`$COMMITTER_TEST_CACHE`, else
`$XDG_CACHE_HOME/committer-tests`, else `~/.cache/committer-tests`), named by a hash of what it is
made from, so a second run only builds what changed:

* the Debian root, keyed by its mmdebstrap command line (about a minute to make);
* the dependencies' wheels, keyed by pyproject.toml; committer's own wheel, keyed by its sources;
* the images built from them (the sidecar's, and the systemd one: the Debian root plus systemd
  from Debian's packages), keyed by what goes in, with their layers, in a podman store of the
  tests' own under the cache directory (never the user's store).

What nobody used for a day is removed by the next run.

Podman runs with `runc` (crun refuses cgroups v1 in hybrid mode, and cannot set rlimits in some
sandboxes: `default_ulimits = []`). Deleting the cache directory starts everything afresh.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
MIRRORS = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian {SUITE}-updates main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
# What the image needs on top of Debian's essential packages (the Containerfile installs the same
# with apt when its base lacks them). passwd: useradd and groupadd.
IMAGE_PACKAGES = ("python3", "python3-venv", "git", "git-lfs", "tini", "ca-certificates", "openssh-client", "passwd")
# As in Debian's slim images: no manual pages, translations or documentation other than copyrights.
SLIM = (
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
)
LABEL = "committer.test"
STALE = 24 * 3600.0  # a cached build nobody used for a day is removed
CONTAINERS_CONF = """\
[containers]
# crun and runc cannot set rlimits in every sandbox; the tests need none
default_ulimits = []
"""


def cache_dir() -> Path:
    explicit = os.environ.get("COMMITTER_TEST_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "committer-tests"


def digest(*parts: str | bytes) -> str:
    """A short hash of the parts, for cache keys."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def mmdebstrap_command(packages: Sequence[str]) -> list[str]:
    """The Debian root as a tar stream on stdout."""
    return [
        "mmdebstrap", "--variant=apt", f"--include={','.join(packages)}", *SLIM,
        # dpkg without fsync while building (a third faster here), not kept in the image
        "--dpkgopt=force-unsafe-io",
        "--customize-hook=sed -i /force-unsafe-io/d \"$1\"/etc/dpkg/dpkg.cfg.d/99mmdebstrap",
        SUITE, "-", *MIRRORS,
    ]


@functools.cache
def why_not() -> str | None:
    """None when this machine can build and run containers with podman, else the reason in one line."""
    if not sys.platform.startswith("linux"):
        return "podman: containers need Linux"
    if os.geteuid() != 0:
        return "podman: the podman tests need root (rootful podman, mmdebstrap, a privileged systemd container)"
    missing = [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        return f"podman: {', '.join(missing)} not installed (scripts/system-deps.sh installs them with apt-get)"
    try:
        info = Podman().run("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=120)
    except subprocess.TimeoutExpired:
        return "podman: `podman info` did not answer within 120 s"
    if info.returncode != 0:
        return f"podman does not work here: {error_line(info.stderr)}"
    return None


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among the lines of a log (committer logs one per line); the rest skipped."""
    found = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            found.append(event)
    return found


def error_line(text: str) -> str:
    """The line of podman's stderr that says what went wrong (its last)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """One builder at a time for one cache entry, across processes (parallel test runs)."""
    locks = cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Podman:
    """The podman command line on the tests' own store, with runc."""

    def __init__(self) -> None:
        cache = cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        conf = cache / "containers.conf"
        if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
            tmp = conf.with_suffix(f".{os.getpid()}")
            tmp.write_text(CONTAINERS_CONF)
            tmp.replace(conf)
        # podman's run-time state, one directory per store: two stores must never share it
        run = (Path("/run/committer-tests") if os.geteuid() == 0 else cache / "run") / digest(str(cache.resolve()))
        self.base = [
            "podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
            "--root", str(cache / "storage"), "--runroot", str(run / "storage"), "--tmpdir", str(run / "libpod"),
        ]
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(self, *args: str, check: bool = True, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """One podman command; a failure raises with its stderr when check is true."""
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, input=input, env=self.env,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
        return proc

    def exists(self, image: str) -> bool:
        return self.run("image", "exists", image, check=False).returncode == 0

    def inspect(self, kind: str, name: str, template: str) -> str:
        return self.run(kind, "inspect", "--format", template, name).stdout.strip()

    def debian_root(self, packages: Sequence[str]) -> str:
        """A Debian root with these packages, as an image made by mmdebstrap; made once per recipe."""
        command = mmdebstrap_command(packages)
        tag = f"localhost/committer-test/debian:{SUITE}-{digest(*command)}"
        with locked(tag.rsplit(":", 1)[1]):
            if not self.exists(tag):
                tar = cache_dir() / f"debian-{os.getpid()}.tar"
                try:
                    with tar.open("wb") as out:
                        made = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True,
                                              timeout=900, check=False)
                    if made.returncode != 0:
                        raise AssertionError(f"mmdebstrap exited {made.returncode}:\n{made.stderr[-4000:]}")
                    self.run("import", "--change", 'CMD ["/bin/bash"]', "--change", f"LABEL {LABEL}=1",
                             str(tar), tag, timeout=600)
                finally:
                    tar.unlink(missing_ok=True)
        return self.used(tag)

    def build(self, context: Path, tag: str, *options: str, timeout: float = 900) -> str:
        """`podman build` of context; the image's ID (tags can move under parallel runs, IDs cannot)."""
        with tempfile.TemporaryDirectory(prefix="iid-") as tmp:
            iid = Path(tmp) / "iid"
            self.run("build", "--layers", "--label", f"{LABEL}=1", "--iidfile", str(iid), "-t", tag, *options,
                     str(context), timeout=timeout)
            return iid.read_text().strip().removeprefix("sha256:")

    def clean_stale(self) -> None:
        """Remove what earlier runs left behind: containers and volumes after an hour, images after a day."""
        listing = self.run("ps", "--all", "--filter", f"label={LABEL}", "--format", "json", check=False)
        try:
            containers = json.loads(listing.stdout or "[]")
        except ValueError:
            containers = []
        for item in containers:
            if time.time() - float(item.get("Created", 0)) > 3600:
                self.run("rm", "--force", "--volumes", item["Id"], check=False)
        self.run("volume", "prune", "--force", "--filter", f"label={LABEL}", "--filter", "until=1h", check=False)
        self.run("image", "prune", "--force", "--filter", f"until={int(STALE)}s", check=False)
        refs = self.run("images", "--filter", f"label={LABEL}", "--format", "{{.Repository}}:{{.Tag}}",
                        check=False).stdout.split()
        for ref in refs:
            mark = self._mark(ref)
            if not ref.endswith(":<none>") and (not mark.exists() or time.time() - mark.stat().st_mtime > STALE):
                self.run("rmi", ref, check=False)
                mark.unlink(missing_ok=True)

    def _mark(self, ref: str) -> Path:
        return cache_dir() / "used" / ref.replace("/", "_").replace(":", "=")

    def used(self, ref: str) -> str:
        """Note that ref is in use, so clean_stale keeps it another day."""
        mark = self._mark(ref)
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()
        return ref

    def name(self, role: str) -> str:
        """A container or volume name no parallel run can take."""
        return f"committer-test-{role}-{uuid.uuid4().hex[:8]}"


# -- wheels -------------------------------------------------------------------------------------


def source_files() -> list[Path]:
    """What committer's wheel is made from: the build context the Containerfile copies."""
    package = [p for p in sorted((ROOT / "committer").rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    return [ROOT / "pyproject.toml", ROOT / "README.md", *package]


def _copy_sources(into: Path) -> None:
    for path in source_files():
        target = into / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _pip_wheel(into: Path, *args: str) -> None:
    # The host's pip configuration (certificate, index, find-links) applies: this is the one step
    # that reaches the package index.
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(into), *args],
                          capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"pip wheel {' '.join(args)} failed:\n{proc.stderr[-4000:]}")


def _touch(path: Path) -> Path:
    os.utime(path)
    return path


def _cached_dir(name: str, make: Callable[[Path], None]) -> Path:
    """cache/wheels/NAME, made by make(dir) once (under a lock, written aside and renamed)."""
    wheels = cache_dir() / "wheels"
    done = wheels / name
    with locked(f"wheels-{name}"):
        if not done.is_dir():
            wheels.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=wheels))
            try:
                make(partial)
                partial.replace(done)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return _touch(done)


def wheelhouse(into: Path) -> str:
    """Fill into with committer's wheel and every dependency's (for `pip install --no-index`); their hash."""
    project = (ROOT / "pyproject.toml").read_bytes()
    sources = b"".join(p.relative_to(ROOT).as_posix().encode() + b"\0" + p.read_bytes() for p in source_files())

    def dependencies(target: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="src-") as src:
            _copy_sources(Path(src))
            _pip_wheel(target, src)
        for own in target.glob("committer-*.whl"):
            own.unlink()

    def own(target: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="src-") as src:
            _copy_sources(Path(src))
            _pip_wheel(target, "--no-deps", src)

    deps = _cached_dir(f"deps-{digest(project, sys.version.split()[0])}", dependencies)
    mine = _cached_dir(f"committer-{digest(sources)}", own)
    _remove_stale(cache_dir() / "wheels")
    into.mkdir(parents=True, exist_ok=True)
    wheels = sorted([*deps.glob("*.whl"), *mine.glob("*.whl")], key=lambda p: p.name)
    for wheel in wheels:
        shutil.copy2(wheel, into / wheel.name)
    return digest(*(w.name.encode() + w.read_bytes() for w in wheels))


def _remove_stale(wheels: Path) -> None:
    for entry in wheels.iterdir():
        if entry.is_dir() and not entry.name.startswith(".") and time.time() - entry.stat().st_mtime > STALE:
            shutil.rmtree(entry, ignore_errors=True)


# -- for the tests -------------------------------------------------------------------------------


def require() -> Podman:
    """Podman, or skip the test with the one-line reason this machine cannot run it."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    return Podman()


@dataclass
class Image:
    """committer's image, built from the Containerfile as deploy/README.md says (offline)."""

    podman: Podman
    id: str
    tag: str
    size: int
    build_seconds: float


def committer_image(podman: Podman, wheels: Path, tests: str) -> Image:
    """The image every podman test of the sidecar runs: built once, later runs reuse its cached layers."""
    base = podman.debian_root(IMAGE_PACKAGES)
    can_run(podman, base, tests)
    packages = wheelhouse(wheels)
    started = time.monotonic()
    tag = podman.used(f"localhost/committer-test/committer:{digest(base, packages)}")
    image_id = podman.build(
        ROOT, tag, "--format", "docker", "--network", "none", "--file", str(ROOT / "Containerfile"),
        "--build-arg", f"BASE={base}", "--build-context", f"wheels={wheels}",
    )
    took = time.monotonic() - started
    size = int(podman.inspect("image", image_id, "{{.Size}}"))
    figures = {"image_bytes": size, "image_build_seconds": round(took, 1), "base": base}
    (cache_dir() / "image-figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    podman.clean_stale()  # after this run's images are marked as used
    return Image(podman, image_id, tag, size, took)


def can_run(podman: Podman, image: str, tests: str) -> None:
    """Skip when podman cannot start a container here at all (kernel, cgroups, sandbox)."""
    probe = podman.run("run", "--rm", "--network", "none", image, "true", check=False, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"{tests}: podman cannot run a container here: {error_line(probe.stderr)}")

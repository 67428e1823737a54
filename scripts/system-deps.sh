#!/usr/bin/env bash
# Installs what committer and its tests need from the system's packages.
#   needed:   git, git-lfs, tini (the container's PID 1; the tests run the image's entrypoint under it),
#             redis-server and postgresql (`committer fleet`'s tests start a real Redis broker and a real
#             PostgreSQL cluster in temporary folders; the packages' own services are not used)
#   optional: podman, runc, mmdebstrap: the image built and run, and systemd booted, for real
#             (tests/deploy/test_image_podman.py, tests/deploy/test_systemd_podman.py); catatonit, the pause
#             process of the pod `podman kube play` makes (tests/deploy/test_kube_podman.py); without them
#             those tests skip with one line saying why.
#   optional: rsync, vim: real slow writers and editors against the watcher (tests/watch/test_half_written.py);
#             without them those tests skip with one line.
#   optional: rclone: `rclone bisync` between two local folders beside the daemon (tests/sync/test_bisync*.py,
#             bench/bisync.py); without it those tests skip with one line.
#   optional: chromium, chromium-driver: the history pages tested in a real headless browser
#             (tests/serve/test_pages_browser.py); COMMITTER_NO_BROWSER=1 leaves them out.
set -euo pipefail
needed=()
command -v git >/dev/null 2>&1 || needed+=(git)
git lfs version >/dev/null 2>&1 || needed+=(git-lfs)
command -v tini >/dev/null 2>&1 || needed+=(tini)
command -v redis-server >/dev/null 2>&1 || needed+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || needed+=(postgresql)
optional=()
for tool in podman runc mmdebstrap catatonit rsync vim rclone; do
  command -v "$tool" >/dev/null 2>&1 || optional+=("$tool")
done
if [ -z "${COMMITTER_NO_BROWSER:-}" ]; then
  command -v chromium >/dev/null 2>&1 || optional+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || optional+=(chromium-driver)
fi
missing=("${needed[@]}" "${optional[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ ${#sudo[@]} -gt 0 ]; }; then
  echo "system-deps: installing ${missing[*]} with ${sudo[*]:+sudo }apt-get"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    exit 0
  fi
  # The optional packages may not exist on this release: install what is needed on its own.
  [ ${#needed[@]} -eq 0 ] || "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
  echo "system-deps: could not install ${optional[*]}: the tests that need them will skip" >&2
  exit 0
fi
if [ ${#needed[@]} -gt 0 ]; then
  echo "system-deps: please install: ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: no apt-get here: without ${optional[*]} the tests that need them skip" >&2

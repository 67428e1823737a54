#!/usr/bin/env python3
"""The image's HEALTHCHECK: GET /healthz (or the path given) on the address COMMITTER_HTTP enables.

    healthcheck.py [/healthz | /readyz]

Exits 0 when the daemon answers 200, 1 otherwise (the HEALTHCHECK contract), with one line on stderr
saying why. Standard library only, so the image needs no curl. A wildcard listen address (`9464`,
`:9464`, `0.0.0.0:9464`, `[::]:9464`) is asked on loopback; proxies from the environment are ignored.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT = 4.0


def health_url(address: str, path: str = "/healthz") -> str | None:
    """The URL to ask for a COMMITTER_HTTP value; None when the endpoint is off (empty)."""
    address = address.strip()
    if not address:
        return None
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = "", address
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def check(url: str, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """(healthy, why) for one GET of url."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return False, f"{url}: HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return False, f"{url}: {exc}"
    return status == 200, f"{url}: HTTP {status}"


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/healthz"
    url = health_url(os.environ.get("COMMITTER_HTTP", ""), path)
    if url is None:
        print("healthcheck: COMMITTER_HTTP is empty, so the daemon serves no health endpoint", file=sys.stderr)
        return 1
    healthy, why = check(url)
    if not healthy:
        print(f"healthcheck: {why}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

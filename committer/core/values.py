"""Parsers of setting values: each takes the setting's name (for the error) and a value from the TOML
file, the environment or a flag, and returns it typed and checked or raises ConfigError."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from committer.core.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
               "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


# git check-ref-format: no component starting with `.` or ending in `.lock`, no `..`, `@{`, `//`, control
# characters, space, ~ ^ : ? * [ \ ; not starting with `-` or `/`, not ending with `/` or `.`.
_BRANCH_BAD = re.compile(r"(^[-/])|((^|/)\.)|(\.\.)|([\x00-\x20~^:?*\[\\\x7f])|(/$)|(\.$)|(\.lock(/|$))|(@\{)|(//)")


def parse_duration(setting: str, value: object) -> float:
    """Seconds from 500ms, 2s, 5m, 1h or a bare number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(setting, f"expected a duration such as 500ms, 2s or 5m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(setting, f"expected a duration such as 500ms, 2s or 5m, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ConfigError(setting, f"must not be negative, got {value!r}")
    return seconds


def parse_size(setting: str, value: object) -> int:
    """Bytes from 10MB, 100 MiB, 512k, 1G or a bare number of bytes (KB, MB, GB are powers of 1000)."""
    if isinstance(value, bool):
        raise ConfigError(setting, f"expected a size such as 10MB or 100MiB, got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ConfigError(setting, f"expected a size such as 10MB or 100MiB, got {value!r}")
        unit = (match.group(2) or "").lower().removesuffix("b")
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size < 0:
        raise ConfigError(setting, f"must not be negative, got {value!r}")
    return size


def duration_text(seconds: float) -> str:
    """A duration as it is written in settings: 500ms, 2s, 10m, 6h; 0 for none."""
    if seconds == 0:
        return "0"
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def size_text(size: int) -> str:
    """A size as it is written in settings: 10MB, 50GB, 512kB; bytes when no unit divides it."""
    for unit, step in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size and size % step == 0:
            return f"{size // step}{unit}"
    return str(size)


def positive_size(setting: str, value: object) -> int:
    """A size in bytes greater than zero."""
    size = parse_size(setting, value)
    if size == 0:
        raise ConfigError(setting, "must be greater than zero")
    return size


def count(setting: str, value: object) -> int:
    if isinstance(value, bool):
        raise ConfigError(setting, f"expected a whole number, got {value!r}")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ConfigError(setting, f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise ConfigError(setting, f"must not be negative, got {value!r}")
    return number


def positive_count(setting: str, value: object) -> int:
    number = count(setting, value)
    if number == 0:
        raise ConfigError(setting, "must be at least 1")
    return number


def positive_duration(setting: str, value: object) -> float:
    seconds = parse_duration(setting, value)
    if seconds <= 0:
        raise ConfigError(setting, f"must be greater than zero, got {value!r}")
    return seconds


def choice(options: tuple[str, ...]) -> Callable[[str, object], str]:
    def parse(setting: str, value: object) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise ConfigError(setting, f"expected one of {', '.join(options)}, got {value!r}")
        return text

    return parse


def path(setting: str, value: object) -> Path:
    text = str(value).strip()
    if not text:
        raise ConfigError(setting, "must not be empty")
    return Path(text).expanduser().absolute()


def boolean(setting: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(setting, f"expected true or false, got {value!r}")


def optional_path(setting: str, value: object) -> Path | None:
    if value is None or str(value).strip() == "":
        return None
    return path(setting, value)


_ADDRESS = re.compile(r"^(?:(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])?:)?(?P<port>\d{1,5})$")


def parse_address(setting: str, value: object) -> tuple[str, int] | None:
    """(host, port) from `9464` or `:9464` (loopback), `0.0.0.0:9464`, `[::1]:9464`; None when empty."""
    text = str(value).strip()
    if not text:
        return None
    match = _ADDRESS.match(text)
    port = int(match.group("port")) if match else -1
    if match is None or not 0 < port < 65536:
        raise ConfigError(setting, f"expected [HOST]:PORT such as 127.0.0.1:9464, got {value!r}")
    host = (match.group("host") or "127.0.0.1").strip("[]")
    return host, port


def address(setting: str, value: object) -> str:
    parse_address(setting, value)
    return str(value).strip()


def line(setting: str, value: object) -> str:
    """One line of text, stripped."""
    if not isinstance(value, str):
        raise ConfigError(setting, f"expected a string, got {value!r}")
    if "\n" in value or "\x00" in value:
        raise ConfigError(setting, "must be a single line")
    return value.strip()


def app_id(setting: str, value: object) -> str:
    text = line(setting, str(value) if isinstance(value, int) and not isinstance(value, bool) else value)
    if text and not re.fullmatch(r"[1-9][0-9]*|Iv[0-9A-Za-z._-]+", text):
        raise ConfigError(setting, f"expected the App's numeric id or its client id (Iv...), got {text!r}")
    return text


def api_url(setting: str, value: object) -> str:
    text = line(setting, value).rstrip("/")
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", text):
        raise ConfigError(setting, f"expected an http(s) URL such as https://api.github.com, got {value!r}")
    return text


def branch(setting: str, value: object) -> str:
    """A branch name as `git check-ref-format --branch` accepts it, given short (`main`, `team/notes`)."""
    name = line(setting, value)
    if name.startswith("refs/"):
        short = name.removeprefix("refs/heads/")
        raise ConfigError(setting, f"{name!r} is a full ref; give the branch name alone, such as {short!r}")
    if not name or name in ("HEAD", "@") or _BRANCH_BAD.search(name):
        raise ConfigError(setting, f"{name!r} is not a valid git branch name")
    return name


def identity(setting: str, value: object) -> str:
    text = line(setting, value)
    if not text or any(c in text for c in "<>"):
        raise ConfigError(setting, f"{text!r} cannot be used in a git identity")
    return text


def patterns(setting: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part for part in re.split(r"[,\n]", value)]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(setting, f"expected a list of patterns, got {value!r}")
    patterns = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(setting, f"expected a pattern string, got {item!r}")
        if item.strip():
            patterns.append(item.strip())
    return tuple(patterns)


def http_url(setting: str, value: object) -> str:
    """An http(s) URL with a host, or empty (off). The error never repeats the URL: it may hold a token."""
    text = line(setting, value)
    if not text:
        return ""
    expected = "expected an http(s) URL such as https://example.org/hook"
    if "://" not in text:
        raise ConfigError(setting, f"{expected}, got something without a scheme")
    scheme = text.split("://", 1)[0]
    if scheme.lower() not in ("http", "https"):
        raise ConfigError(setting, f"{expected}, got a {scheme[:10]!r} URL")
    if any(c.isspace() for c in text):
        raise ConfigError(setting, f"{expected}; this one has white space in it")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigError(setting, f"{expected}; this one's host or port is not valid") from None
    if not parts.hostname or port == 0:
        raise ConfigError(setting, f"{expected}; this one has no host or port 0")
    return text


def shown_url(url: str) -> str:
    """A URL as logs and status show it: no user, no password, no query (a token may hide there)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def command_line(setting: str, value: object) -> str:
    """A command line split as a shell would split it (it is run without one); empty is off."""
    text = line(setting, value)
    if not text:
        return ""
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(setting, f"not a valid command line: {exc}") from None
    if not argv:
        raise ConfigError(setting, "not a valid command line: no program")
    return text


# What git accepts as a remote and committer passes on: no character that a shell, a config file or git's
# own URL parser could read two ways: white space and control characters of any kind (C1, no-break and
# other Unicode spaces, line separators, direction overrides and other format characters that change how a
# URL reads to a person), and a backslash that some parsers take for a path separator and others for part
# of the user name.
_URL_BAD = re.compile(r"[\x00-\x20\x7f-\xa0\\\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]")
_URL_SCHEMES = ("https", "http", "ssh", "file")
_HOSTNAME = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
_HOST = rf"(?:{_HOSTNAME}|\[[0-9A-Fa-f:.]+\])"
# userinfo: one user, for http(s) an optional password, percent-encoded (never a second `@`, `:` or `/`).
_USERINFO = r"[A-Za-z0-9._~!$&'()*+,;=%][A-Za-z0-9._~!$&'()*+,;=%-]*"
_NETLOC = re.compile(rf"^(?:(?P<user>{_USERINFO})(?::(?P<password>{_USERINFO}))?@)?(?P<host>{_HOST})"
                     rf"(?::(?P<port>[0-9]{{1,5}}))?$")
_SCP = re.compile(rf"^(?:(?P<user>[A-Za-z0-9._~+][A-Za-z0-9._~+-]*)@)?(?P<host>{_HOSTNAME}):(?P<path>[^:]+)$")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_REMOTE_FORMS = ("expected https://host/owner/repo.git, ssh://host/path, user@host:owner/repo.git, "
                 "file:///path or /path")


def remote_url(setting: str, value: object) -> str:
    """A remote git can only read as a remote: https, ssh (URL or scp form), file, an absolute path, or http
    to this machine only. Never an option (`-...`), never a URL with two readings of its host. The error
    never repeats the URL: it may hold a password."""
    text = line(setting, value)
    if not text:
        return ""
    problem = remote_problem(text)
    if problem is not None:
        raise ConfigError(setting, f"{problem} ({_REMOTE_FORMS})")
    return text


def remote_problem(text: str) -> str | None:
    """Why `text` is not a remote committer hands to git, or None when it is one."""
    if text.startswith("-"):
        return "a remote must not start with '-' (git would read it as an option)"
    if _URL_BAD.search(text):
        return "a remote must not hold white space, control characters or a backslash"
    if text.startswith("/"):
        return None if not text.startswith("//") else "a local path must not start with //"
    if "://" not in text:
        match = _SCP.match(text)
        if match is None or match["path"].startswith("-"):
            return "not a URL, an absolute path or the user@host:path form"
        return None
    scheme, _, rest = text.partition("://")
    if scheme not in _URL_SCHEMES:  # lower case only: git looks its helper up by the name as written
        return f"the {scheme[:12]!r} scheme is not accepted"
    netloc, slash, path = rest.partition("/")
    if not slash or path.startswith("-"):
        return "the URL has no path to a repository"
    if "#" in text or (scheme != "https" and scheme != "http" and "?" in text):
        return "the URL must not have a fragment or a query"
    if scheme == "file":
        return None if not netloc else "a file:// URL names no host (file:///path)"
    match = _NETLOC.match(netloc)
    if match is None:
        return "the URL's host is not one plain host name, address or [IPv6] address with an optional port"
    if match["port"] is not None and not 0 < int(match["port"]) < 65536:
        return "the URL's port is out of range"
    if match["password"] is not None and scheme == "ssh":
        return "an ssh URL must not hold a password"
    if scheme == "http" and match["host"].strip("[]").lower() not in _LOOPBACK:
        return "plain http is accepted only to this machine (localhost, 127.0.0.1, [::1]); use https"
    return None

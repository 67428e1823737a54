"""Credentials in file content: which kind of secret a text file holds, if any (pure).

A file whose content matches is held back from the commit: GitHub's push protection rejects a
whole push that contains one of these, which would block every later push.

| kind                      | shape (the random part must look random, see below)                          |
| ------------------------- | ---------------------------------------------------------------------------- |
| github-token              | `ghp_` `gho_` `ghu_` `ghs_` `ghr_` + 36 `[A-Za-z0-9]`                         |
| github-fine-grained-token | `github_pat_` + 82 `[A-Za-z0-9_]`                                            |
| gitlab-token              | `glpat-` + 20 or more `[A-Za-z0-9_-]` (the classic 20 and the longer routable |
|                           | form `glpat-<27..300>.<2><7>`)                                               |
| gitlab-service-token      | `gldt-` `glrt-` `glptt-` `glcbt-` `glft-` `glsoat-` `gloas-` `glimt-`         |
|                           | `glagent-` `glffct-` + 20 or more `[A-Za-z0-9_-]`                            |
| aws-access-key-id         | `AKIA` `ASIA` `ABIA` `ACCA` + 16 `[A-Z0-9]`                                  |
| aws-secret-access-key     | 40 `[A-Za-z0-9/+]` assigned (`=`, `:`, `:=`, `=>`, optional quotes) to a name |
|                           | `[aws_]secret_access_key` or `aws_secret_key` in any case, separated by `_`,  |
|                           | `-`, `.` or nothing (`AWS_SECRET_ACCESS_KEY=`, `"SecretAccessKey": "`)        |
| slack-token               | `xoxb-` `xoxp-` `xoxa-` `xoxr-` `xoxs-` `xoxo-` `xoxe-` + digits `-` + 10 or  |
|                           | more `[A-Za-z0-9-]`; legacy `xoxa-`/`xoxr-` + 20..48 `[A-Za-z0-9]`;           |
|                           | `xoxe.xoxb-`/`xoxe.xoxp-` config tokens; `xapp-1-A…-123…-abc…` app tokens     |
| slack-webhook             | `hooks.slack.com/services/` (or `workflows/`, `triggers/`) + 30 or more       |
|                           | `[A-Za-z0-9+/_-]`                                                            |
| private-key               | `-----BEGIN … PRIVATE KEY-----` (RSA, EC, DSA, OPENSSH, ENCRYPTED, plain      |
|                           | PKCS#8, `PGP PRIVATE KEY BLOCK`) followed, within 400 bytes and before the    |
|                           | next `-----`, by 40 base64 characters of key material; also inside JSON       |
|                           | strings (`"-----BEGIN PRIVATE KEY-----\\nMIIE…"`)                             |
| stripe-secret-key         | `sk_live_` `rk_live_` (and `_prod_`) + 20 or more `[A-Za-z0-9]`               |
| google-api-key            | `AIza` + 35 `[A-Za-z0-9_-]`                                                  |
| npm-token                 | `npm_` + 36 `[A-Za-z0-9]`                                                    |
| pypi-token                | `pypi-AgEIcHlwaS5vcmc` (pypi.org) or `pypi-AgENdGVzdC5weXBpLm9yZw`            |
|                           | (test.pypi.org) + 50 or more `[A-Za-z0-9_-]`                                 |
| openai-api-key            | `sk-proj-` `sk-svcacct-` `sk-admin-` + 40 or more `[A-Za-z0-9_-]`; legacy     |
|                           | `sk-` + 20..200 chars + `T3BlbkFJ` + 20 or more                              |
| anthropic-api-key         | `sk-ant-` + type and 2 digits (`api03`, `admin01`, `oat01`) `-` + 80 or more  |
|                           | `[A-Za-z0-9_-]`                                                              |

Every match must also pass these, so prose, placeholders and look-alikes are not held:
- it starts at a word boundary: not right after `[A-Za-z0-9_]` (a JSON `\\n` escape or a URL
  `%XX` escape right before counts as a boundary); fixed-length shapes must also end at one,
  so `ghp_` + 37 characters or `xAKIA…` is not a token;
- its random part has a Shannon entropy of at least 3 bits per character (2.5 for the 20
  characters of GitLab tokens, 2.25 for the 16 of AWS key IDs: measured on a million random
  tokens of each shape, none falls below), so `ghp_XXXX…` or `AKIA1111222233334444` are
  placeholders; and it contains none of `example`, `abcdefgh`, `12345678`, `xxxxxxxx`,
  `00000000` in any case (AWS's documented `…EXAMPLE` keys, tutorial tokens).

Not scanned: content with a NUL byte in its first 8 KiB is binary, which includes UTF-16 and
UTF-32 text (their ASCII characters carry NUL bytes); binary content is only checked for being one
DER-encoded private key as a whole (`der_private_key`, kind `private-key`); secrets encoded in base64 or split across
lines are not recognized. Test keys (`sk_test_`, `rk_test_`), public keys and certificates are
not secrets.

Speed: content without a run of 16 token characters cannot hold any of these and is not scanned
(one `translate` and one substring search); otherwise each group of prefixes sharing a first byte
is one regular expression that starts with a literal, which `re` finds with a fast scan, so clean
text costs eleven such scans.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

BINARY_PROBE = 8192  # bytes looked at for a NUL (git's own binary check looks at the first 8000)

KINDS: Mapping[str, str] = MappingProxyType({
    "github-token": "GitHub classic token: personal (ghp_), OAuth (gho_), app (ghu_, ghs_) or refresh (ghr_)",
    "github-fine-grained-token": "GitHub fine-grained personal access token (github_pat_)",
    "gitlab-token": "GitLab personal, project or group access token (glpat-)",
    "gitlab-service-token": "GitLab deploy, runner, trigger, CI job, feed, SCIM, agent or other token",
    "aws-access-key-id": "AWS access key ID (AKIA, ASIA, ABIA, ACCA)",
    "aws-secret-access-key": "AWS secret access key assigned to aws_secret_access_key or a similar name",
    "slack-token": "Slack bot, user, app, workspace or configuration token (xox*-, xapp-)",
    "slack-webhook": "Slack incoming webhook URL (hooks.slack.com)",
    "private-key": "private key block (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted or PGP)",
    "stripe-secret-key": "Stripe live secret or restricted key (sk_live_, rk_live_)",
    "google-api-key": "Google API key (AIza)",
    "npm-token": "npm access token (npm_)",
    "pypi-token": "PyPI upload token (pypi-)",
    "openai-api-key": "OpenAI API key (sk-proj-, sk-svcacct-, sk-admin-, legacy sk-)",
    "anthropic-api-key": "Anthropic API key (sk-ant-)",
})

_WORD_EDGE = rb"(?:\A|[^A-Za-z0-9_]|\\[nrt]|%[0-9A-Fa-f]{2})\Z"
_ASSIGN = rb"""["']?[ \t]*[:=]{1,2}>?[ \t]*["']?"""
_AWS_SECRET = rb"(?P<body>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
_PLACEHOLDERS = (b"example", b"abcdefgh", b"12345678", b"xxxxxxxx", b"00000000")


@dataclass(frozen=True)
class _Rule:
    """One shape: literal starts, the regex after them (random part in group `body`), context before."""

    kind: str
    leads: tuple[bytes, ...]
    rest: bytes
    before: bytes = _WORD_EDGE  # must match the bytes just before the lead; b"" = anything
    min_entropy: float = 3.0  # bits per character of `body`; lower for short bodies so real ones pass


_GITLAB_SERVICE = (b"gldt-", b"glrt-", b"glptt-", b"glcbt-", b"glft-", b"glsoat-", b"gloas-", b"glimt-",
                   b"glagent-", b"glffct-")

# Within a first byte, earlier rules win at the same position: keep longer leads first.
_RULES: tuple[_Rule, ...] = (
    _Rule("github-fine-grained-token", (b"github_pat_",), rb"(?P<body>[A-Za-z0-9_]{82})(?![A-Za-z0-9_])"),
    _Rule("github-token", (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
          rb"(?P<body>[A-Za-z0-9]{36})(?![A-Za-z0-9_])"),
    _Rule("gitlab-token", (b"glpat-",), rb"(?P<body>[A-Za-z0-9_-]{20,})", min_entropy=2.5),
    _Rule("gitlab-service-token", _GITLAB_SERVICE, rb"(?P<body>[A-Za-z0-9_-]{20,})", min_entropy=2.5),
    _Rule("aws-access-key-id", (b"AKIA", b"ASIA", b"ABIA", b"ACCA"),
          rb"(?P<body>[A-Z0-9]{16})(?![A-Za-z0-9_])", min_entropy=2.25),
    # The lead is the middle of the name ("ecret"), so what comes before is checked separately.
    _Rule("aws-secret-access-key", (b"ecret", b"ECRET"),
          rb"(?i:[_.-]?access[_.-]?key)" + _ASSIGN + _AWS_SECRET, before=rb"(?i:aws[_.-]?)?[sS]\Z"),
    _Rule("aws-secret-access-key", (b"ecret", b"ECRET"),
          rb"(?i:[_.-]?key)" + _ASSIGN + _AWS_SECRET, before=rb"(?i:aws[_.-]?)[sS]\Z"),
    _Rule("slack-token", (b"xox",),
          rb"(?P<body>[abposre]-\d{1,14}-[A-Za-z0-9-]{10,}"
          rb"|[ar]-[A-Za-z0-9]{20,48}(?![A-Za-z0-9-])"
          rb"|e\.xox[bp]-\d-[A-Za-z0-9]{100,})"),
    _Rule("slack-token", (b"xapp-",), rb"(?P<body>\d-[A-Z0-9]{6,}-\d{6,}-[a-z0-9]{20,})"),
    _Rule("slack-webhook", (b"hooks.slack.com/",),
          rb"(?:services|workflows|triggers)/(?P<body>[A-Za-z0-9+/_-]{30,})"),
    _Rule("private-key", (b"-----BEGIN",),
          rb"[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"
          rb"(?:(?!-----)[\s\S]){0,400}?(?P<body>[A-Za-z0-9+/]{40})",
          before=b""),
    _Rule("stripe-secret-key", (b"sk_live_", b"rk_live_", b"sk_prod_", b"rk_prod_"),
          rb"(?P<body>[A-Za-z0-9]{20,})"),
    _Rule("google-api-key", (b"AIza",), rb"(?P<body>[A-Za-z0-9_-]{35})(?![A-Za-z0-9_-])"),
    _Rule("npm-token", (b"npm_",), rb"(?P<body>[A-Za-z0-9]{36})(?![A-Za-z0-9_])"),
    _Rule("pypi-token", (b"pypi-",),
          rb"(?P<body>(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,})"),
    _Rule("anthropic-api-key", (b"sk-ant-",), rb"(?P<body>[a-z]{2,8}\d\d-[A-Za-z0-9_-]{80,})"),
    _Rule("openai-api-key", (b"sk-proj-", b"sk-svcacct-", b"sk-admin-"), rb"(?P<body>[A-Za-z0-9_-]{40,})"),
    _Rule("openai-api-key", (b"sk-",), rb"(?P<body>[A-Za-z0-9_-]{20,200}?T3BlbkFJ[A-Za-z0-9_-]{20,})"),
)


@dataclass(frozen=True)
class _Alt:
    rule: _Rule
    before: re.Pattern[bytes] | None


@dataclass(frozen=True)
class _Scanner:
    regex: re.Pattern[bytes]
    alts: Mapping[str, _Alt]  # body group name -> the rule that alternative detects


def _common_prefix(leads: list[bytes]) -> bytes:
    first, last = min(leads), max(leads)
    n = 0
    while n < len(first) and first[n] == last[n]:
        n += 1
    return first[:n]


def _scanners(rules: tuple[_Rule, ...]) -> tuple[_Scanner, ...]:
    """One regex per first byte of the leads: `<common literal prefix>(?:alt|alt|...)`.

    The literal prefix lets `re` skip ahead quickly; each alternative starts with a literal too,
    so a mismatch costs one comparison. The body group is an alternative's only group, so
    `match.lastgroup` names the alternative that matched.
    """
    groups: dict[int, list[tuple[bytes, _Rule]]] = {}
    for rule in rules:
        shape = re.compile(rule.rest)
        if shape.groups != 1 or "body" not in shape.groupindex:
            raise ValueError(f"{rule.kind}: the random part must be the one group, named body")
        for lead in rule.leads:
            groups.setdefault(lead[0], []).append((lead, rule))
    scanners = []
    for members in groups.values():
        prefix = _common_prefix([lead for lead, _ in members])
        parts: list[bytes] = []
        alts: dict[str, _Alt] = {}
        for n, (lead, rule) in enumerate(members):
            parts.append(re.escape(lead[len(prefix):]) + rule.rest.replace(b"(?P<body>", b"(?P<b%d>" % n))
            alts[f"b{n}"] = _Alt(rule, re.compile(rule.before) if rule.before else None)
        regex = re.compile(re.escape(prefix) + b"(?:" + b"|".join(parts) + b")")
        scanners.append(_Scanner(regex, MappingProxyType(alts)))
    return tuple(scanners)


_SCANNERS = _scanners(_RULES)


def _entropy(data: bytes) -> float:
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def _accepted(alt: _Alt, data: bytes, match: re.Match[bytes]) -> bool:
    body = match[match.lastgroup or 0]
    if _entropy(body) < alt.rule.min_entropy:
        return False
    folded = body.lower()
    if any(word in folded for word in _PLACEHOLDERS):
        return False
    start = match.start()
    return alt.before is None or alt.before.search(data, max(0, start - 8), start) is not None


# Every shape above holds a run of at least 16 bytes of [A-Za-z0-9_+/-]: its random part, or for a
# Slack token (the shortest body, 14) the body with its lead. Prose rarely has such a run, so most
# files cost one translate and one substring search (about 5 us for 2.5 KB) instead of eleven scans
# (about 22 us). tests/test_secrets.py checks every rule's shortest match has the run.
_RUN = 16
_RUN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+/-")
_RUN_MAP = bytes(0x74 if byte in _RUN_BYTES else 0x20 for byte in range(256))
_RUN_NEEDLE = b"t" * _RUN


def may_hold_secret(data: bytes) -> bool:
    """False when no shape can match: the content has no run of 16 token characters."""
    return _RUN_NEEDLE in data.translate(_RUN_MAP)


_DER_MAX = 16384  # a DER private key is a few kB (RSA 8192: about 4.8 kB)


def der_private_key(data: bytes) -> bool:
    """Whether the whole content is one DER-encoded private key (PKCS#1 RSA, DSA, PKCS#8, SEC1 EC): a SEQUENCE
    spanning exactly the file whose first element is the INTEGER version 0 or 1. Certificates (a SEQUENCE
    that starts with a SEQUENCE), encrypted PKCS#8 and PKCS#12 stores (version 3) do not match."""
    if not 8 <= len(data) <= _DER_MAX or data[0] != 0x30:
        return False
    first = data[1]
    if first < 0x80:
        length, head = first, 2
    elif first in (0x81, 0x82):
        size = first - 0x80
        length, head = int.from_bytes(data[2 : 2 + size], "big"), 2 + size
    else:
        return False
    return head + length == len(data) and data[head : head + 3] in (b"\x02\x01\x00", b"\x02\x01\x01")


def find_secret(data: bytes) -> str | None:
    """The kind of the first credential found in a file's content, or None (binary content is not scanned,
    except for being one DER-encoded private key: a `.key` or `.der` file made with `-outform DER`)."""
    found = locate(data)
    return None if found is None else found.kind


@dataclass(frozen=True)
class Found:
    """Where a credential is: its kind, and the line (from 1) it starts on; 0 for a whole binary key.
    Never the secret itself."""

    kind: str
    line: int


def locate(data: bytes) -> Found | None:
    """The first credential in a file's content, with its line, or None (as `find_secret` scans)."""
    if data[:1] == b"\x30" and der_private_key(data):
        return Found("private-key", 0)
    if data.find(b"\0", 0, BINARY_PROBE) != -1 or not may_hold_secret(data):
        return None
    first: tuple[int, str] | None = None
    for scanner in _SCANNERS:
        for match in scanner.regex.finditer(data):
            if first is not None and match.start() >= first[0]:
                break
            alt = scanner.alts[match.lastgroup or ""]
            if _accepted(alt, data, match):
                first = (match.start(), alt.rule.kind)
                break
    if first is None:
        return None
    return Found(first[1], data.count(b"\n", 0, first[0]) + 1)


def described(kind: str) -> str:
    """A kind in words: `GitHub classic token: personal (ghp_), ...`; the kind itself when unknown."""
    return KINDS.get(kind, kind)

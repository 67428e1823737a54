"""Secret content: which credential kinds are found in a file, and which look-alikes are not.

Sample tokens are built from pieces and seeded random bodies, so this file holds no literal
credential that a scanner (ours or GitHub's) would flag.
"""

import base64
import random
import string
import uuid
from collections.abc import Callable

import pytest

from committer.policy.secrets import BINARY_PROBE, KINDS, find_secret, may_hold_secret

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
BASE64 = ALNUM + "+/"
UPPER36 = string.ascii_uppercase + string.digits
BASE32 = string.ascii_uppercase + "234567"
HEX = "0123456789abcdef"


def rand(alphabet: str, n: int, seed: int = 0) -> str:
    return "".join(random.Random(seed).choices(alphabet, k=n))


def pem(label: str, lines: int = 3, eol: str = "\n", seed: int = 0) -> str:
    body = eol.join(rand(BASE64, 64, seed + i) for i in range(lines))
    dashes = "-" * 5
    return f"{dashes}BEGIN {label}{dashes}{eol}{body}{eol}{dashes}END {label}{dashes}{eol}"


# One generator per kind; `rng` gives the random parts so a test can draw many real-shaped tokens.
Gen = Callable[[random.Random], str]


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


SHAPES: dict[str, Gen] = {
    "github-token": lambda g: g.choice(["ghp", "gho", "ghu", "ghs", "ghr"]) + "_" + _r(g, ALNUM, 36),
    "github-fine-grained-token": lambda g: "github" + "_pat_" + _r(g, ALNUM, 22) + "_" + _r(g, ALNUM, 59),
    "gitlab-token": lambda g: "glpat" + "-" + _r(g, URLSAFE, 20),
    "gitlab-service-token": lambda g: g.choice(["gldt", "glrt", "glptt", "glft"]) + "-" + _r(g, URLSAFE, 20),
    "aws-access-key-id": lambda g: g.choice(["AKIA", "ASIA", "ABIA", "ACCA"]) + _r(g, BASE32, 16),
    "aws-secret-access-key": lambda g: "aws_secret_access_key = " + _r(g, BASE64, 40),
    "slack-token": lambda g: "xoxb" + "-" + _r(g, string.digits, 12) + "-" + _r(g, string.digits, 13)
    + "-" + _r(g, ALNUM, 24),
    "slack-webhook": lambda g: "https://hooks.slack" + ".com/services/T" + _r(g, UPPER36, 8) + "/B"
    + _r(g, UPPER36, 8) + "/" + _r(g, ALNUM, 24),
    "private-key": lambda g: pem("RSA " + "PRIVATE KEY", seed=g.randrange(1 << 30)),
    "stripe-secret-key": lambda g: g.choice(["sk", "rk"]) + "_live_" + _r(g, ALNUM, 24),
    "google-api-key": lambda g: "AI" + "za" + _r(g, URLSAFE, 35),
    "npm-token": lambda g: "npm" + "_" + _r(g, ALNUM, 36),
    "pypi-token": lambda g: "pypi-" + "AgEIcHlwaS5vcmc" + _r(g, URLSAFE, 160),
    "openai-api-key": lambda g: "sk-" + "proj-" + _r(g, URLSAFE, 74) + "T3Blbk" + "FJ" + _r(g, URLSAFE, 74),
    "anthropic-api-key": lambda g: "sk-" + "ant-api03-" + _r(g, URLSAFE, 93) + "AA",
}


def sample(kind: str, seed: int = 7) -> str:
    return SHAPES[kind](random.Random(seed))


def test_every_documented_kind_has_a_sample() -> None:
    assert set(SHAPES) == set(KINDS)
    assert all(text and "\n" not in text for text in KINDS.values())


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_each_kind_is_found_and_named_in_prose(kind: str) -> None:
    text = f"# Notes\n\nSet it up like this:\n\n```\nexport VALUE={sample(kind)}\n```\n\nThen restart.\n"
    assert find_secret(text.encode()) == kind


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_random_tokens_of_each_shape_are_all_found(kind: str) -> None:
    rng = random.Random(kind)
    missed = [t for t in (SHAPES[kind](rng) for _ in range(200)) if find_secret(t.encode()) != kind]
    assert missed == []


@pytest.mark.parametrize("text", [
    "token: {t}", "TOKEN={t}\n", '{{"token": "{t}"}}', "url = https://x-access-token:{t}@github.com/o/r\n",
    "`{t}`", "'{t}',", "({t})", "<{t}>",
])
def test_token_is_found_in_common_contexts(text: str) -> None:
    assert find_secret(text.format(t=sample("github-token")).encode()) == "github-token"


@pytest.mark.parametrize("line", [
    "AWS_SECRET_ACCESS_KEY={v}",
    "export AWS_SECRET_ACCESS_KEY=\"{v}\"",
    "aws_secret_access_key = {v}",
    '"SecretAccessKey": "{v}",',
    "secretAccessKey: '{v}'",
    "aws_secret_key => {v}",
    "aws-secret-access-key: {v}",
])
def test_aws_secret_is_found_under_its_usual_names(line: str) -> None:
    text = line.format(v=rand(BASE64, 40, 3)) + "\n"
    assert find_secret(text.encode()) == "aws-secret-access-key"


@pytest.mark.parametrize("label", [
    "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY", "PRIVATE KEY", "PGP PRIVATE KEY BLOCK",
])
def test_private_key_blocks_are_found(label: str) -> None:
    assert find_secret(pem(label).encode()) == "private-key"


def test_legacy_encrypted_pem_with_headers_is_found() -> None:
    headers = "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC," + rand(HEX, 32).upper() + "\n\n"
    block = pem("RSA PRIVATE KEY").replace("KEY-----\n", "KEY-----\n" + headers, 1)
    assert find_secret(block.encode()) == "private-key"


def test_private_key_inside_a_json_string_is_found() -> None:
    key = pem("PRIVATE KEY").replace("\n", "\\n")
    text = '{"type": "service_account", "private_key": "' + key + '", "client_email": "a@b.c"}\n'
    assert find_secret(text.encode()) == "private-key"


def test_token_after_a_json_newline_escape_is_found() -> None:
    text = '{"body": "first line\\n' + sample("npm-token") + '\\nlast"}'
    assert find_secret(text.encode()) == "npm-token"


@pytest.mark.parametrize("text", [
    "Remember to rotate the token and never share your password or secret key.\n"
    "The API token lives in the vault; the GitHub token expires monthly. Token: see 1Password.\n",
    "password = hunter2\nsecret: <your-secret>\ntoken: <your-token>\n"
    "GITHUB_TOKEN=${{ secrets.GITHUB_TOKEN }}\n",
    "ghp_" + rand(ALNUM, 35),                       # too few characters
    "ghp_" + rand(ALNUM, 37),                       # part of a longer run
    "my_ghp_" + rand(ALNUM, 36),                    # inside a longer identifier
    "ghp_XXXXXXXX and ghp_" + "X" * 36 + " and ghp_" + "x" * 36,
    "GITHUB_TOKEN=<your-token>",
    "ghp_" + "Ab" * 18,                             # low entropy: a pattern, not a random token
    "AKIA" + "QRST" * 4,
    "glpat-" + "a1B2" * 5,
    "npm_" + "ABC123" * 6,
    "glpat-xxxxxxxxxxxxxxxxxxxx",
    "xoxb-your-token-here xoxb-1234-5678-abcd",
    "xoxb" + "-123456789012-123456789012-" + "abcdefghijklmnopqrstuvwx",
    "commit " + rand(HEX, 40) + " fixed it",
    "id " + str(uuid.UUID(int=random.Random(1).getrandbits(128))),
    "X" + "AKIA" + rand(BASE32, 16),                # AKIA inside a longer word
    "AKIA" + rand(BASE32, 17),
    "AKIA" + "IOSFODNN7" + "EXAMPLE",               # AWS's documented example
    "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
    "api_key = " + rand(BASE64, 40),                # 40 base64 characters under another name
    "secret_key = " + rand(BASE64, 40),             # not an AWS name without aws_ / access
    pem("PUBLIC KEY"),
    pem("CERTIFICATE"),
    pem("RSA PUBLIC KEY"),
    "Paste the block starting with -----BEGIN OPENSSH PRIVATE KEY----- into the box.\n",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n...\n-----END RSA PRIVATE KEY-----\n",
    "sk_test_" + rand(ALNUM, 24) + " rk_test_" + rand(ALNUM, 24),
    "Use a task-list, a desk-lamp and a disk-" + rand(ALNUM, 40),
    "AIza" + rand(URLSAFE, 34),
    "https://hooks.slack.com/services/T00000000/B00000000/" + "X" * 24,
    "npm_config_registry=https://registry.npmjs.org/",
])
def test_look_alikes_are_not_secrets(text: str) -> None:
    assert find_secret(text.encode()) is None


def test_base64_image_data_uri_in_markdown_is_not_a_secret() -> None:
    png = b"\x89PNG\r\n\x1a\n" + random.Random(5).randbytes(30_000)
    text = "# Diagram\n\n![diagram](data:image/png;base64," + base64.b64encode(png).decode() + ")\n"
    assert find_secret(text.encode()) is None


def test_binary_content_is_not_scanned() -> None:
    assert find_secret(b"\x00\x01" + sample("github-token").encode()) is None
    late_nul = b"x" * BINARY_PROBE + b"\x00" + sample("github-token").encode()
    assert find_secret(late_nul) == "github-token"


def test_utf16_text_is_not_recognized() -> None:
    # Documented limit: UTF-16 puts NUL bytes next to ASCII characters, so it counts as binary.
    assert find_secret(("token: " + sample("github-token")).encode("utf-16")) is None


def test_secret_in_the_middle_of_a_1mb_file_is_found() -> None:
    para = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n"
    half = para * (512 * 1024 // len(para))
    assert find_secret(half + half) is None
    assert find_secret(half + b"key: " + sample("slack-token").encode() + b"\n" + half) == "slack-token"


def test_crlf_text_is_scanned() -> None:
    text = "line one\r\ntoken = " + sample("gitlab-token") + "\r\nline three\r\n"
    assert find_secret(text.encode()) == "gitlab-token"
    assert find_secret(pem("EC PRIVATE KEY", eol="\r\n").encode()) == "private-key"


def test_the_first_credential_in_the_file_is_reported() -> None:
    text = f"a: {sample('npm-token')}\nb: {sample('github-token')}\n"
    assert find_secret(text.encode()) == "npm-token"
    text = f"a: {sample('github-token')}\nb: {sample('npm-token')}\n"
    assert find_secret(text.encode()) == "github-token"


def test_a_placeholder_does_not_hide_a_later_real_token() -> None:
    text = "ghp_" + "X" * 36 + "\n" + sample("github-token") + "\n"
    assert find_secret(text.encode()) == "github-token"


def test_empty_and_plain_files_have_no_secret() -> None:
    assert find_secret(b"") is None
    assert find_secret("Ünïcödé notes ✓\n".encode()) is None


# The shortest text each shape accepts: the scan's quick test (a run of 16 token characters) must
# let every one of them through.
SHORTEST: list[tuple[str, str]] = [
    ("github-token", "ghp" + "_" + rand(ALNUM, 36, 1)),
    ("github-fine-grained-token", "github" + "_pat_" + rand(ALNUM, 82, 2)),
    ("gitlab-token", "glpat" + "-" + rand(ALNUM, 20, 3)),
    ("gitlab-service-token", "gldt" + "-" + rand(ALNUM, 20, 4)),
    ("aws-access-key-id", "AKIA" + rand(BASE32, 16, 5)),
    ("aws-secret-access-key", "SecretAccessKey=" + rand(BASE64, 40, 6)),
    ("slack-token", "xoxb" + "-1-" + rand(ALNUM, 10, 7)),
    ("slack-token", "xoxa" + "-" + rand(ALNUM, 20, 8)),
    ("slack-token", "xapp" + "-1-A1B2C3-123456-" + rand(string.ascii_lowercase + string.digits, 20, 9)),
    ("slack-webhook", "hooks.slack" + ".com/services/" + rand(ALNUM, 30, 10)),
    ("private-key", "-" * 5 + "BEGIN " + "PRIVATE KEY" + "-" * 5 + "\n" + rand(BASE64, 40, 11)),
    ("stripe-secret-key", "rk" + "_live_" + rand(ALNUM, 20, 12)),
    ("google-api-key", "AI" + "za" + rand(URLSAFE, 35, 13)),
    ("npm-token", "npm" + "_" + rand(ALNUM, 36, 14)),
    ("pypi-token", "pypi-" + "AgEIcHlwaS5vcmc" + rand(URLSAFE, 50, 15)),
    ("openai-api-key", "sk-" + "proj-" + rand(URLSAFE, 40, 16)),
    ("openai-api-key", "sk-" + rand(ALNUM, 20, 17) + "T3Blbk" + "FJ" + rand(ALNUM, 20, 18)),
    ("anthropic-api-key", "sk-" + "ant-api03-" + rand(URLSAFE, 80, 19)),
]


@pytest.mark.parametrize(("kind", "token"), SHORTEST)
def test_the_shortest_token_of_each_shape_passes_the_quick_test_and_is_found(kind: str, token: str) -> None:
    text = f"key: {token}\n".encode()
    assert may_hold_secret(text)
    assert find_secret(text) == kind
    assert {k for k, _ in SHORTEST} == set(KINDS)


def test_prose_without_long_tokens_skips_the_scan() -> None:
    prose = b"Notes on the meeting: we agreed to ship on Friday, see ./docs/plan.md and the wiki.\n" * 40
    assert not may_hold_secret(prose)
    assert may_hold_secret(prose + b"a-long_token+with/sixteen")

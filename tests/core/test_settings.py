"""Settings: precedence, durations and one clear error naming the setting."""

from pathlib import Path

import pytest

from committer.core.configfile import read_config_file
from committer.core.errors import ConfigError
from committer.core.settings import load_settings
from committer.core.values import parse_duration


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    s = load_settings(
        file_values={"debounce": "5s", "branch": "from-file", "max_delay": "1m", "observer": "poll"},
        env={"COMMITTER_DEBOUNCE": "3s", "COMMITTER_BRANCH": "from-env"},
        flags={"debounce": "500ms", "data_dir": str(tmp_path)},
    )
    assert s.debounce == 0.5 and s.source_of("debounce") == "flag"
    assert s.branch == "from-env" and s.source_of("branch") == "env"
    assert s.max_delay == 60 and s.source_of("max_delay") == "file"
    assert s.observer == "poll"
    assert s.push_interval == 5.0 and s.source_of("push_interval") == "default"


def test_defaults_match_the_spec() -> None:
    s = load_settings()
    assert (s.data_dir, s.git_dir, s.branch) == (Path("/app/data"), Path("/app/git/knowledge.git"), "main")
    assert (s.debounce, s.max_delay, s.observer) == (2.0, 30.0, "auto")
    assert (s.author_name, s.author_email) == ("committer", "committer@localhost")


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("2s", 2), ("5m", 300), ("1h", 3600), ("3", 3),
                                               (1.5, 1.5)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration("x", text) == seconds


@pytest.mark.parametrize(
    ("layer", "values", "named"),
    [
        ("flags", {"debounce": "soon"}, "debounce"),
        ("env", {"COMMITTER_MAX_DELAY": "-1s"}, "COMMITTER_MAX_DELAY"),
        ("flags", {"observer": "fanotify"}, "observer"),
        ("flags", {"branch": "bad..name"}, "branch"),
        ("flags", {"poll_interval": "0s"}, "poll-interval"),
        ("flags", {"author_email": "a<b"}, "author-email"),
        ("file", {"debounce": True}, "debounce"),
    ],
)
def test_bad_values_name_the_setting(layer: str, values: dict[str, object], named: str) -> None:
    kwargs: dict[str, object] = {"file": {"file_values": values}, "env": {"env": values},
                                 "flags": {"flags": values}}[layer]
    with pytest.raises(ConfigError) as info:
        load_settings(**kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(named)


def test_max_delay_below_debounce_is_refused() -> None:
    with pytest.raises(ConfigError, match="max-delay"):
        load_settings(flags={"debounce": "10s", "max_delay": "5s"})


def test_git_dir_inside_the_data_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"git-dir: .* inside the data directory"):
        load_settings(flags={"data_dir": str(tmp_path), "git_dir": str(tmp_path / "sub" / "k.git")})
    with pytest.raises(ConfigError, match="git-dir"):
        load_settings(flags={"data_dir": str(tmp_path), "git_dir": str(tmp_path)})


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("debounce = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_config_file(bad)
    bad.write_text("[committer]\nsurprise = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'surprise'"):
        read_config_file(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "missing.toml")


def test_config_file_accepts_a_committer_table_and_dashes(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[committer]\nmax-delay = "10s"\nignore = ["*.log", "build/"]\n')
    s = load_settings(file_values=read_config_file(path))
    assert s.max_delay == 10 and s.ignore == ("*.log", "build/")


@pytest.mark.parametrize(("text", "size"), [("10MB", 10_000_000), ("100 MiB", 100 * 2**20), ("512k", 512_000),
                                            ("1G", 10**9), ("42", 42), (7, 7), ("1.5MB", 1_500_000)])
def test_sizes(text: object, size: int) -> None:
    from committer.core.values import parse_size

    assert parse_size("x", text) == size


def test_safety_defaults_and_bad_values() -> None:
    s = load_settings()
    assert (s.max_delete, s.lfs_threshold, s.max_file_size) == (100, 10_000_000, 100_000_000)
    with pytest.raises(ConfigError, match="COMMITTER_MAX_DELETE"):
        load_settings(env={"COMMITTER_MAX_DELETE": "lots"})
    with pytest.raises(ConfigError, match="lfs-threshold"):
        load_settings(flags={"lfs_threshold": "big"})


def test_shown_settings_keep_credentials_out_and_say_where_each_came_from() -> None:
    from committer.core.settings import NAMES, shown

    s = load_settings(flags={"remote": "https://me:hunter2@example.org/notes.git",
                             "notify_url": "https://me:pw@hooks.example.org/in?token=abc"},
                      env={"COMMITTER_IGNORE": "*.log,cache/"})
    out = shown(s)
    assert list(out) == list(NAMES)
    assert out["remote"] == {"value": "https://***@example.org/notes.git", "source": "flag"}
    assert out["notify_url"] == {"value": "https://hooks.example.org/in", "source": "flag"}
    assert out["ignore"] == {"value": ["*.log", "cache/"], "source": "env"}
    assert out["data_dir"] == {"value": "/app/data", "source": "default"}

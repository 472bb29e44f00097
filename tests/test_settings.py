"""Settings.from_env: profiles, validation that lists every problem, secrets never shown."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from personal_assistant_db import ConfigurationError, Settings
from personal_assistant_db.settings import PROFILES, closest_variable, parsers

CANARY = "Canary-Pa55word-7xq"
URL = f"postgresql://app:{CANARY}@db.example:5432/app"
ENV_NAMES = [f.metadata["env"] for f in fields(Settings) if "env" in f.metadata]

values = st.one_of(
    st.sampled_from(
        ["", "0", "1", "-1", "abc", "true", "off", "0.5", "1e309", "nan", "30", "degraded"]
    ),
    st.integers(-5, 500).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=12),
    st.just(CANARY),
)
environments = st.fixed_dictionaries(
    {
        "DATABASE_URL": st.sampled_from(
            [URL, URL.replace("postgresql", "mysql"), "", f"nonsense {CANARY}"]
        )
    },
    optional={
        "DB_ENV": st.sampled_from(["development", "test", "production", "staging", ""]),
        **{name: values for name in ENV_NAMES},
    },
)


@given(environments)
def test_any_environment_gives_settings_or_one_clear_error(env: dict[str, str]) -> None:
    try:
        settings = Settings.from_env(env)
    except ConfigurationError as exc:
        text = str(exc)
        assert exc.problems, "a ConfigurationError always lists its problems"  # noqa: PT017
        for problem in exc.problems:
            assert problem.variable in {"DATABASE_URL", "DB_ENV", *ENV_NAMES}
            assert problem.problem and problem.expected
    else:
        text = repr(settings) + settings.safe_url
        assert settings.url.password == CANARY
    # The canary is the URL's password (and may be the token's value): it must never show. A
    # plain setting such as DB_APPLICATION_NAME that was given the same text is shown, rightly.
    shown_plainly = {v for k, v in env.items() if k not in {"DATABASE_URL", "DB_HEALTH_TOKEN"}}
    if "://" in env["DATABASE_URL"] and CANARY not in shown_plainly:
        assert CANARY not in text


def test_every_bad_variable_is_listed_at_once() -> None:
    env = {
        "DATABASE_URL": "mysql://u:pw@h/d",
        "DB_ENV": "staging",
        "DB_POOL_SIZE": "abc",
        "DB_MAX_OVERFLOW": "-1",
        "DB_POOL_TIMEOUT": "0",
        "DB_STARTUP_MODE": "maybe",
    }
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    listed = [p.variable for p in info.value.problems]
    assert listed == [
        "DB_ENV",
        "DATABASE_URL",
        "DB_POOL_SIZE",
        "DB_MAX_OVERFLOW",
        "DB_POOL_TIMEOUT",
        "DB_STARTUP_MODE",
    ]
    assert "expected a whole number >= 1" in str(info.value)


@pytest.mark.parametrize("size", ["abc", "-1", "0", "1.5", ""])
def test_bad_pool_size_names_the_variable(size: str) -> None:
    with pytest.raises(ConfigurationError, match="DB_POOL_SIZE: invalid value"):
        Settings.from_env({"DATABASE_URL": URL, "DB_POOL_SIZE": size})


def test_missing_url_says_what_is_expected() -> None:
    with pytest.raises(
        ConfigurationError, match=r"DATABASE_URL: is not set; expected postgresql://"
    ):
        Settings.from_env({})


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_defaults_apply_and_explicit_variables_win(profile: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": URL, "DB_ENV": profile})
    for key, value in PROFILES[profile].items():
        assert getattr(settings, key) == value
    explicit = Settings.from_env({"DATABASE_URL": URL, "DB_ENV": profile, "DB_POOL_SIZE": "17"})
    assert explicit.pool_size == 17


def test_cross_field_rules() -> None:
    with pytest.raises(
        ConfigurationError, match="DB_WARMUP_CONNECTIONS: 6 is more than DB_POOL_SIZE=5"
    ):
        Settings.from_env({"DATABASE_URL": URL, "DB_POOL_SIZE": "5", "DB_WARMUP_CONNECTIONS": "6"})


def test_repr_and_errors_hide_the_password_and_the_token() -> None:
    token = "tok-" + "x" * 20
    settings = Settings.from_env({"DATABASE_URL": URL, "DB_HEALTH_TOKEN": token})
    assert CANARY not in repr(settings) and token not in repr(settings)
    assert "app:***@db.example" in repr(settings)
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"DATABASE_URL": URL, "DB_HEALTH_TOKEN": "short"})
    assert "DB_HEALTH_TOKEN: invalid value (hidden)" in str(info.value)


def test_both_driver_urls_are_derived() -> None:
    settings = Settings.from_env({"DATABASE_URL": URL})
    assert settings.async_url.drivername == "postgresql+asyncpg"
    assert settings.sync_url.drivername == "postgresql+psycopg"
    assert settings.sync_url.password == CANARY


def test_connect_args_carry_timeouts_and_application_name() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": URL,
            "DB_APPLICATION_NAME": "svc-a",
            "DB_STATEMENT_TIMEOUT_MS": "1500",
            "DB_COMMAND_TIMEOUT": "9",
        }
    )
    assert settings.asyncpg_connect_args() == {
        "timeout": 10.0,
        "command_timeout": 9.0,
        "server_settings": {"application_name": "svc-a", "statement_timeout": "1500"},
    }


def test_an_unknown_db_variable_is_reported_once_with_the_closest_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parsers, "_warned_unknown", set())  # as in a fresh process
    env = {"DATABASE_URL": URL, "DB_POOLSIZE": "20", "DB_ZZZ_UNRELATED_THING": "1"}
    with capture_logs() as first:
        settings = Settings.from_env(env)
    with capture_logs() as again:
        Settings.from_env(env)
    assert settings.pool_size == PROFILES["production"]["pool_size"]  # ignored, hence the warning
    unknown = [e for e in first if e["event"] == "db.settings.unknown_variable"]
    hints = {e["variable"]: e["hint"] for e in unknown}
    assert hints["DB_POOLSIZE"].endswith("did you mean DB_POOL_SIZE?")
    assert "docs/configuration.md" in hints["DB_ZZZ_UNRELATED_THING"]
    assert [e for e in again if e["event"] == "db.settings.unknown_variable"] == []


@given(st.sampled_from(ENV_NAMES), st.integers(0, 30), st.sampled_from(["", "X", "S"]))
def test_a_misspelt_setting_names_the_one_meant(name: str, seed: int, extra: str) -> None:
    chars = list(name)
    del chars[3 + seed % (len(chars) - 3)]  # drop one letter after "DB_"
    typo = "".join(chars) + extra
    assume(typo not in ENV_NAMES)
    assert closest_variable(typo) == name


replica_entries = st.lists(
    st.one_of(
        st.just(f"postgresql://ro:{CANARY}@replica{1}.example:5432/app"),
        st.sampled_from(
            [
                f"mysql://ro:{CANARY}@r/app",
                f"postgresql://ro:{CANARY}@r:notaport/app",
                f"postgresql://ro:{CANARY}@r:5432",
                f"garbage {CANARY}",
                "",
            ]
        ),
    ),
    min_size=1,
    max_size=4,
)


@given(replica_entries)
def test_replica_urls_parse_or_name_the_variable_without_a_password(entries: list[str]) -> None:
    env = {"DATABASE_URL": URL, "DATABASE_REPLICA_URLS": ",".join(entries)}
    try:
        settings = Settings.from_env(env)
    except ConfigurationError as exc:
        text = str(exc)
        assert {p.variable for p in exc.problems} == {"DATABASE_REPLICA_URLS"}  # noqa: PT017
        assert all("entry " in p.problem for p in exc.problems)  # noqa: PT017
    else:
        if not ",".join(entries).strip():
            assert settings.replica_urls == ()
        else:
            assert [u.password for u in settings.replica_urls] == [CANARY] * len(entries)
            assert all(u.drivername == "postgresql+asyncpg" for u in settings.replica_urls)
        text = repr(settings) + " ".join(settings.safe_replica_urls)
    assert CANARY not in text


def test_a_garbage_replica_entry_names_its_position() -> None:
    env = {
        "DATABASE_URL": URL,
        "DATABASE_REPLICA_URLS": f"postgresql://ro:{CANARY}@r1/app, nonsense:{CANARY}@x",
    }
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env)
    assert "DATABASE_REPLICA_URLS: entry 2 of 2 does not start with a scheme" in str(caught.value)
    assert CANARY not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "mode", "window"),
    [
        ("lsn", "lsn", 0.0),
        ("OFF", "off", 0.0),
        ("window:2", "window", 2.0),
        ("window:0.5", "window", 0.5),
    ],
)
def test_read_your_writes_modes(raw: str, mode: str, window: float) -> None:
    s = Settings.from_env({"DATABASE_URL": URL, "DB_READ_YOUR_WRITES": raw})
    assert (s.read_your_writes.mode, s.read_your_writes.window) == (mode, window)


@pytest.mark.parametrize(
    "raw", ["window", "window:", "window:-1", "window:abc", "lag", "window:nan"]
)
def test_bad_read_your_writes_is_named(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="DB_READ_YOUR_WRITES: invalid value"):
        Settings.from_env({"DATABASE_URL": URL, "DB_READ_YOUR_WRITES": raw})


def test_replica_defaults() -> None:
    s = Settings.from_env({"DATABASE_URL": URL})
    assert (s.replica_urls, s.replica_max_lag_ms, s.read_your_writes) == ((), 1000, "lsn")

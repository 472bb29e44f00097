"""Pure parts of the doctor: pool advice as a property (Hypothesis), rendering, parsing."""

from __future__ import annotations

import argparse
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from personal_assistant_db import Finding, PoolStats, Report, Severity
from personal_assistant_db._sql import quote_ident
from personal_assistant_db.cli.doctor import parse_memory
from personal_assistant_db.doctor.pool_advice import HEADROOM, PoolInputs, pool_advice
from personal_assistant_db.doctor.render import render_json, render_text
from personal_assistant_db.settings import Settings


def _stats(
    size: int, overflow: int, used: int, waiting: int, timeouts: int, p95: float
) -> PoolStats:
    return PoolStats(
        size=size,
        max_overflow=overflow,
        used=used,
        idle=0,
        overflow_in_use=max(0, used - size),
        waiting=waiting,
        checkouts=100,
        reused_checkouts=90,
        timeouts=timeouts,
        wait_p50=p95 / 2,
        wait_p95=p95,
        wait_max=p95,
        created=size,
        closed=0,
        invalidated=0,
    )


def _recommended(f: Finding) -> int:
    size = int(f.action.split("DB_POOL_SIZE=")[1].split()[0])
    overflow = int(f.action.split("DB_MAX_OVERFLOW=")[1].split()[0])
    return size + overflow


@given(
    size=st.integers(1, 50),
    overflow=st.integers(0, 50),
    waiting=st.integers(0, 200),
    timeouts=st.integers(0, 5),
    p95=st.floats(0, 5),
    max_connections=st.integers(5, 2000),
    others=st.integers(0, 100),
    workers=st.integers(1, 64),
    cores=st.integers(1, 64),
)
def test_pool_advice_never_shrinks_a_waiting_pool_nor_oversubscribes_the_server(
    size: int,
    overflow: int,
    waiting: int,
    timeouts: int,
    p95: float,
    max_connections: int,
    others: int,
    workers: int,
    cores: int,
) -> None:
    stats = _stats(size, overflow, size + overflow, waiting, timeouts, p95)
    f = pool_advice(
        PoolInputs(max_connections, 3, others, workers, cores, True, size, overflow, stats)
    )
    budget = (max_connections - 3 - others - HEADROOM) // workers
    saturated = waiting > 0 or timeouts > 0 or p95 > 0.05
    assert f.evidence["saturated"] is saturated
    if "server limit forbids" in f.summary:
        assert f.severity is Severity.ERROR
        assert int(f.action.split()[2]) > max_connections  # the max_connections that would fit
    else:
        assert _recommended(f) <= budget  # never advise more than the server can give
        if saturated:
            assert _recommended(f) > size + overflow  # callers waited: more capacity
            assert f.severity >= Severity.WARNING
        elif (size + overflow) * workers <= max_connections - 3 - others - HEADROOM:
            # no evidence of waits, and it fits: the configuration stands, whatever the formula
            assert f.severity is Severity.INFO and f.action.startswith("keep ")
            assert _recommended(f) == size + overflow
    assert str(f.evidence["reasoning"]).count(";") >= 2  # the reasoning is shown


def test_pool_advice_without_stats_keeps_the_production_default() -> None:
    defaults = Settings.from_env({"DATABASE_URL": "postgresql://u@h/db", "DB_ENV": "production"})
    f = pool_advice(
        PoolInputs(100, 3, 0, 2, 4, False, defaults.pool_size, defaults.max_overflow, None)
    )
    assert f.evidence["hikari_per_worker"] == 5  # (4 x 2 + 1) / 2 workers, rounded up
    assert "pass --server-cores" in str(f.evidence["reasoning"])
    assert "no live pool statistics" in str(f.evidence["reasoning"])
    # the formula alone is no evidence against the package's own defaults (10 + 10)
    assert f.severity is Severity.INFO
    assert f.action.startswith("keep DB_POOL_SIZE=10 DB_MAX_OVERFLOW=10")


REPORT = Report(
    findings=(
        Finding(
            Severity.ERROR,
            "unreadable",
            "pg_stat_statements",
            "could not read it",
            {"sqlstate": "42501"},
            "GRANT",
        ),
        Finding(Severity.INFO, "memory", "machine memory", "unknown", {}, "pass --machine-memory"),
        Finding(
            Severity.WARNING,
            "duplicate_index",
            "public.t.i",
            "dup",
            {"size_bytes": 8192},
            'DROP INDEX CONCURRENTLY "public"."i";',
        ),
    ),
    facts={"server_version": "15.8", "database": "app"},
)


def test_text_groups_and_colours_only_when_asked() -> None:
    plain = render_text(REPORT)
    assert "\033" not in plain
    assert plain.index("ERROR (1)") < plain.index("WARNING (1)") < plain.index("INFO (1)")
    assert "evidence: size_bytes=8192" in plain
    assert "\033[1;31mERROR (1)\033[0m" in render_text(REPORT, colour=True)


def test_json_is_stable() -> None:
    data = json.loads(render_json(REPORT))
    assert list(data) == ["format", "facts", "summary", "findings"]
    assert data["summary"] == {"error": 1, "warning": 1, "info": 1}
    assert data["findings"][0]["severity"] == "error"


@given(st.text(min_size=1, max_size=63))
def test_quote_ident_round_trips(name: str) -> None:
    quoted = quote_ident(name)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert quoted[1:-1].replace('""', '"') == name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("8GB", 8 * 1024**3), ("512mb", 512 * 1024**2), ("1.5G", 1536 * 1024**2), ("4096", 4096)],
)
def test_parse_memory(raw: str, expected: int) -> None:
    assert parse_memory(raw) == expected


@pytest.mark.parametrize("raw", ["", "lots", "-1GB", "0", "5PB"])
def test_parse_memory_rejects(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected a size"):
        parse_memory(raw)


def test_severity_parse_names_choices() -> None:
    assert Severity.parse(" Warning ") is Severity.WARNING
    with pytest.raises(ValueError, match="info, warning, error"):
        Severity.parse("fatal")


@given(
    workers=st.integers(1, 16),
    replicas=st.integers(0, 3),
    size=st.integers(1, 30),
    overflow=st.integers(0, 30),
)
def test_pool_advice_counts_workers_times_pool_plus_overflow_per_node(
    workers: int, replicas: int, size: int, overflow: int
) -> None:
    inputs = PoolInputs(100, 3, 0, workers, 4, False, size, overflow, None, replicas=replicas)
    finding = pool_advice(inputs)
    assert finding.evidence["connections_per_node"] == workers * (size + overflow)
    assert finding.evidence["nodes"] == 1 + replicas
    if finding.severity == Severity.WARNING:  # over the server's free connections
        assert f"= {workers * (size + overflow)} connections per node" in finding.summary
        assert (f"each of the {replicas} replicas" in finding.summary) == bool(replicas)

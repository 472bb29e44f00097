"""The replication harness itself: real standbys that stream, pause, and get promoted."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from personal_assistant_db.testing import ReplicaTopology


def test_standby_streams_pauses_and_is_promoted(postgres_bindir: Path | None) -> None:
    with ReplicaTopology(standbys=1, bindir=postgres_bindir) as topo:
        standby = topo.standbys[0]
        assert topo.query(standby, "SELECT pg_is_in_recovery()") is True
        topo.query(topo.primary, "CREATE TABLE t (i int)")
        topo.wait_caught_up(standby)
        topo.pause_replay(standby)
        topo.query(topo.primary, "INSERT INTO t VALUES (1)")
        # Paused: the row is received but not applied.
        assert topo.query(standby, "SELECT count(*) FROM t") == 0
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            topo.query(standby, "INSERT INTO t VALUES (2)")
        topo.resume_replay(standby)
        topo.wait_caught_up(standby)
        assert topo.query(standby, "SELECT count(*) FROM t") == 1
        topo.stop(topo.primary)
        assert topo.promote(standby) >= 0
        topo.query(standby, "INSERT INTO t VALUES (3)")
        assert topo.query(standby, "SELECT count(*) FROM t") == 2


def test_two_standbys_each_have_a_wal_sender(postgres_bindir: Path | None) -> None:
    with ReplicaTopology(standbys=2, bindir=postgres_bindir) as topo:
        senders = topo.query(topo.primary, "SELECT count(*) FROM pg_stat_replication")
        assert senders == 2
        assert len({s.port for s in topo.nodes}) == 3

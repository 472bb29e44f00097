"""Hypothesis state machine: random apply-to / rollback-to / verify sequences on a real database.

After every operation the live schema snapshot must equal the shipped expected snapshot for the
applied prefix, yoyo's history must list exactly that prefix, and verify must be clean.
"""

from __future__ import annotations

from contextlib import ExitStack

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from migrate_helpers import IDS, assert_snapshot

from personal_assistant_db.migrate import apply, rollback, status, verify
from personal_assistant_db.testing import fresh_database

POINTS = st.integers(min_value=0, max_value=len(IDS))  # 0 = base, k = first k applied


def test_random_migration_sequences(server_url: str) -> None:
    class Migrations(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.stack = ExitStack()
            self.url = self.stack.enter_context(fresh_database(server_url, prefix="pa_sm"))
            self.applied = 0

        @initialize()
        def start_empty(self) -> None:
            assert status(self.url).applied == ()

        @rule(k=POINTS)
        def apply_to(self, k: int) -> None:
            done = apply(self.url, to=IDS[k - 1]) if k else apply(self.url, dry_run=True)
            if k:
                assert done == list(IDS[self.applied : k]) if k > self.applied else done == []
                self.applied = max(self.applied, k)

        @rule(k=POINTS)
        def rollback_to(self, k: int) -> None:
            if k > self.applied:
                return
            done = rollback(self.url, to=IDS[k - 1]) if k else rollback(self.url, all=True)
            assert done == list(reversed(IDS[k : self.applied]))
            self.applied = k

        @rule(n=st.integers(min_value=1, max_value=3))
        def rollback_steps(self, n: int) -> None:
            if n > self.applied:
                return
            assert rollback(self.url, steps=n) == list(
                reversed(IDS[self.applied - n : self.applied])
            )
            self.applied -= n

        @rule()
        def verify_clean(self) -> None:
            report = verify(self.url)
            assert report.ok, report.problems

        @invariant()
        def schema_matches_applied_prefix(self) -> None:
            assert status(self.url).applied == IDS[: self.applied]
            assert_snapshot(self.url, IDS[self.applied - 1] if self.applied else "")

        def teardown(self) -> None:
            self.stack.close()

    run_state_machine_as_test(
        Migrations, settings=settings(max_examples=8, stateful_step_count=8, deadline=None)
    )

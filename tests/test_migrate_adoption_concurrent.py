"""Both app versions on one database through adoption: a rolling deploy, as the issue asks.

The legacy app (tests/legacy_client.py: plain SQL on the legacy columns, two threads) and the new
version (tests/new_client.py: the package's models on the statement API, on the ``pa_adopt``
views) run their whole flows (register with phone and email, log in, tokens, roles, permission
checks, MFA, events, audit) while ``adopt`` expands a database of 20,000 users in small batches,
then side by side, then the new version alone while ``contract`` runs (the old version must be
gone by then: docs/adopting.md). Zero errors on either side, and each reads and uses what the
other wrote: logs in with the other's password hash, checks the other's tokens, roles, TOTP
secret, backup codes and events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa
from legacy_client import LegacyClient, LegacyLoad, create_legacy, fill_legacy, totp
from new_client import NewClient, sha256

from personal_assistant_db.migrate import adopt, contract
from personal_assistant_db.testing import started_database

MakeDb = Callable[[], str]


def _views_ready(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('pa_adopt.users') IS NOT NULL").fetchone()
        return bool(row and row[0])


async def _new_load(client: NewClient, stop: asyncio.Event, tag: str, made: list[int]) -> None:
    n = 0
    while not stop.is_set():
        made.append(await client.session(f"{tag}-{n}"))
        n += 1


@pytest.mark.slow
async def test_legacy_and_new_versions_run_through_expand_and_contract(
    make_database: MakeDb,
) -> None:
    url = make_database()
    create_legacy(url)
    fill_legacy(url, users=20_000, events=40_000)

    async with started_database(url) as db:
        new = NewClient(db)
        new_users: list[int] = []
        with LegacyLoad(url) as legacy:
            while not legacy.users:  # noqa: ASYNC110 (polls a thread, not a task)
                await asyncio.sleep(0.05)
            legacy_before_expand = legacy.stats.flows
            # expand runs in a thread; the new version starts as soon as its views exist
            expanding = asyncio.create_task(asyncio.to_thread(adopt, url, batch_size=1_000))
            while not _views_ready(url) and not expanding.done():  # noqa: ASYNC110 (polls the db)
                await asyncio.sleep(0.05)
            stop_new = asyncio.Event()
            new_task = asyncio.create_task(_new_load(new, stop_new, "during-expand", new_users))
            report = await expanding
            assert report.exit_code == 0, report.as_dict()
            # both versions served whole visits while expand ran, not only before or after it
            legacy_during_expand = legacy.stats.flows - legacy_before_expand
            new_during_expand = len(new_users)
            print(
                f"expand {report.timings}: legacy flows {legacy_during_expand},"
                f" new visits {new_during_expand} during expand"
            )
            assert legacy_during_expand > 0 and new_during_expand > 0
            await asyncio.sleep(2)  # both versions side by side after expand
            stop_new.set()
            await new_task
            assert new_users and legacy.users

            # --- each reads and uses what the other wrote -----------------------------------
            with LegacyClient(url, stats=legacy.stats) as old:
                # the old app logs in a user the new one registered, sees its roles and events
                new_id = await new.register("Crossing@New.Example", "pw-new", phone="+4915550001")
                await new.assign_role(new_id, "premium")
                await new.security_event(new_id, "mfa_totp_enabled", "medium")
                assert old.login("Crossing@New.Example", "pw-new") == new_id
                assert old.user(new_id)["phone_number"] == "+4915550001"
                assert old.roles_of(new_id) == ["premium", "user"]
                assert old.has_permission(new_id, "memory:delete")
                assert ("mfa_totp_enabled", "warning") in old.events_of(new_id)

                # the new app logs in a user the old one registered, with its token, MFA, codes
                old_id = old.register("crossing@old.example", "pw-old", phone="+4415550002")
                old.assign_role(old_id, "administrator")
                token = old.issue_token(old_id)
                secret, codes = old.setup_mfa(old_id)
                old.security_event(old_id, "login_failed", "warning")
                assert await new.login("crossing@old.example", "pw-old") == old_id
                assert (await new.user(old_id)).phone_number == "+4415550002"
                assert await new.has_permission(old_id, "rbac:admin")
                assert await new.token_user(token) == old_id
                assert await new.verify_totp(old_id, totp(secret))
                assert ("login_failed", "medium") in await new.events_of(old_id)
                # a revocation and a spent backup code on one side hold on the other
                assert await new.revoke_token(token)
                assert old.token_user(token) is None
                spent = await db.execute(
                    sa.text(
                        "UPDATE pa_adopt.mfa_configurations"
                        " SET backup_codes = array_remove(backup_codes, :h)"
                        " WHERE user_id = :u AND :h = ANY(backup_codes)"
                    ),
                    {"h": sha256(codes[0]), "u": old_id},
                )
                assert spent == 1
                assert not old.use_backup_code(old_id, codes[0])
                assert old.use_backup_code(old_id, codes[1])
                # a legacy write after expand reaches the new columns at once (the trigger)
                old.login("crossing@old.example", "wrong")
                assert (await new.user(old_id)).failed_login_count == 1

        assert legacy.stats.errors == [], legacy.stats.errors[:5]
        assert new.stats.errors == [], new.stats.errors[:5]

        # --- contract, with the new version running; the old one is gone ------------------
        stop_new = asyncio.Event()
        during_contract: list[int] = []
        new_task = asyncio.create_task(_new_load(new, stop_new, "during-contract", during_contract))
        done = await asyncio.to_thread(contract, url, accept_loss=("security_events.ip_address",))
        stop_new.set()
        await new_task
        assert done.exit_code == 0, done.as_dict()
        assert new.stats.errors == [], new.stats.errors[:5]
        assert during_contract
        # after contract: the package's own tables in public, the views pass through
        public = NewClient(db, schema=None)
        assert await public.login("crossing@old.example", "pw-old") == old_id
        assert await public.token_user(token) is None
        assert await new.login("Crossing@New.Example", "pw-new") == new_id
        assert sorted(await public.roles_of(old_id)) == ["administrator", "user"]
        assert await public.session("after-contract")

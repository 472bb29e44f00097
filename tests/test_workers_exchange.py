"""The exchange directory: private, per app, per user; stale and foreign files never read.

Real files, real processes (a sleeping child stands for a live peer worker, an exited one for a
dead worker), real flock.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from personal_assistant_db import ConfigurationError, Database, Telemetry
from personal_assistant_db.workers import families, identity
from personal_assistant_db.workers.exchange import MAX_FILE_BYTES, Exchange
from personal_assistant_db.workers.identity import WorkerId
from personal_assistant_db.workers.lease import Lease

COUNTER = ["q", "counter", "queries", "", [["q_total", {"op": "SELECT"}, 5.0]]]
GAUGE = ["used", "gauge", "in use", "", [["used", {}, 3.0]]]


@pytest.fixture
def peer() -> Iterator[WorkerId]:
    """A live process of our run's shape (its pid and start time are real)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = identity.start_time(child.pid)
        assert start is not None
        yield WorkerId(child.pid, start, identity.boot_id(), identity.current().run)
    finally:
        child.kill()
        child.wait()


def _dead() -> WorkerId:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = identity.start_time(child.pid) or "1"
    child.wait()
    return WorkerId(child.pid, start, identity.boot_id(), identity.current().run)


def _exchange(base: Path, me: WorkerId, app: str = "app") -> Exchange:
    ex = Exchange(base, app, me)
    ex.open()
    return ex


def _publish_as(base: Path, who: WorkerId, metrics: list[object], app: str = "app") -> None:
    _exchange(base, who, app).publish({"metrics": metrics})


def test_folders_are_0700_and_files_0600(tmp_path: Path) -> None:
    ex = _exchange(tmp_path / "x", identity.current())
    ex.publish({"metrics": [COUNTER]})
    assert stat.S_IMODE(os.stat(tmp_path / "x").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(ex.folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(ex.my_file).st_mode) == 0o600


def test_a_live_peer_is_read_and_another_apps_worker_is_not(tmp_path: Path, peer: WorkerId) -> None:
    me = identity.current()
    _publish_as(tmp_path, peer, [COUNTER])
    _publish_as(tmp_path, peer, [GAUGE], app="other-app")
    found, _ = _exchange(tmp_path, me).collect()
    assert [(p.worker.pid, p.live, p.data["metrics"]) for p in found] == [
        (peer.pid, True, [COUNTER])
    ]
    other, _ = _exchange(tmp_path, me, "other-app").collect()
    assert [p.data["metrics"] for p in other] == [[GAUGE]]


def test_a_file_copied_from_another_app_or_widened_is_ignored(
    tmp_path: Path, peer: WorkerId
) -> None:
    me = identity.current()
    _publish_as(tmp_path, peer, [COUNTER], app="other-app")
    ours = _exchange(tmp_path, me)
    name = f"w-{peer.key}.json"
    (ours.folder / name).write_bytes((tmp_path / "other-app" / name).read_bytes())
    os.chmod(ours.folder / name, 0o600)
    assert ours.collect()[0] == []  # right place, right owner, wrong app key inside
    _publish_as(tmp_path, peer, [COUNTER])
    os.chmod(ours.folder / name, 0o644)
    assert ours.collect()[0] == []  # readable by others: not written by us
    os.chmod(ours.folder / name, 0o600)
    assert len(ours.collect()[0]) == 1
    if os.getuid() == 0:  # only root can give a file away
        os.chown(ours.folder / name, 65534, 65534)
        assert ours.collect()[0] == []  # another user's file


def test_an_oversized_file_is_not_read(tmp_path: Path, peer: WorkerId) -> None:
    ex = _exchange(tmp_path, peer)
    with pytest.raises(ValueError, match="MAX_FILE_BYTES"):
        ex.publish({"pad": "x" * MAX_FILE_BYTES})
    path = ex.folder / f"w-{peer.key}.json"
    header = json.dumps(ex.header())[:-1]
    path.write_text(header + ',"pad":"' + "x" * MAX_FILE_BYTES + '"}')
    os.chmod(path, 0o600)
    assert _exchange(tmp_path, identity.current()).collect()[0] == []


def test_a_stale_file_with_our_pid_from_an_earlier_run_is_ignored_and_removed(
    tmp_path: Path,
) -> None:
    me = identity.current()
    earlier = WorkerId(me.pid, "1", me.boot, "1-earlier-supervisor")
    _publish_as(tmp_path, earlier, [COUNTER])
    ex = _exchange(tmp_path, me)
    assert ex.collect()[0] == []
    assert ex.compact(families.fold) == 1
    assert not list(ex.folder.glob("w-*")) and (ex.read("archive.json") or {}).get("metrics") == []


def test_a_dead_worker_of_our_run_keeps_its_counters_not_its_gauges(tmp_path: Path) -> None:
    me = identity.current()
    dead = _dead()
    _publish_as(tmp_path, dead, [COUNTER, GAUGE])
    ex = _exchange(tmp_path, me)
    found, archive = ex.collect()
    assert [(p.live, p.worker.pid) for p in found] == [(False, dead.pid)] and archive is None
    assert ex.compact(families.fold) == 1
    found, archive = ex.collect()
    assert found == [] and archive is not None
    assert archive["metrics"] == [COUNTER] and archive["ids"] == [dead.key]
    # A second dead worker adds to the same series.
    _publish_as(tmp_path, _dead(), [COUNTER])
    ex.compact(families.fold)
    merged = ex.collect()[1]
    assert merged is not None and merged["metrics"][0][4] == [["q_total", {"op": "SELECT"}, 10.0]]


@pytest.mark.parametrize("problem", ["a file in the way", "another owner"])
async def test_an_unusable_directory_fails_startup_naming_the_setting(
    problem: str, test_env: dict[str, str], tmp_path: Path
) -> None:
    if problem == "another owner" and os.getuid() != 0:
        pytest.skip("needs root to give the directory to another user")
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "dir"
    if problem == "another owner":
        target = tmp_path / "theirs"
        target.mkdir()
        os.chown(target, 65534, 65534)
    db = Database.from_env({**test_env, "DB_WORKERS": "on", "DB_WORKERS_DIR": str(target)})
    db.health_app(telemetry=Telemetry(db, tracing=False))
    with pytest.raises(ConfigurationError, match="DB_WORKERS_DIR") as caught:
        await db.start()
    await db.stop()
    assert str(target) in str(caught.value)


def test_the_lease_is_held_by_one_process_and_freed_when_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "leader.lock"
    code = (
        "import time\nfrom pathlib import Path\n"
        "from personal_assistant_db.workers.lease import Lease\n"
        f"assert Lease(Path({str(path)!r})).acquire()\n"
        "print('held', flush=True)\ntime.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    mine = Lease(path)
    assert not mine.acquire()
    holder.kill()  # SIGKILL: no cleanup runs, the kernel drops the flock
    holder.communicate()
    assert mine.acquire() and mine.held
    mine.release()

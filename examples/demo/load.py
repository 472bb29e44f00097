"""Drive traffic at a running demo so its P95 and pool figures move.

``python -m examples.demo.load [--url http://127.0.0.1:8000] [--seconds 10] [--concurrency 8]``

Creates a few users (scrypt hashing is deliberately slow, so few), grants them roles, then runs
permission checks, user reads and audit listings from ``--concurrency`` threads for
``--seconds``. Prints requests per second, HTTP status counts and the demo's ``/stats``.
Standard library only: it runs wherever the demo runs.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ROLES = ("user", "premium", "administrator")
PERMISSIONS = (
    "profile:read",
    "tasks:write",
    "notes:read",
    "assistant:advanced",
    "integrations:manage",
    "users:manage",
    "audit:read",
)


def call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def seed(base: str, users: int) -> list[int]:
    ids = []
    for i in range(users):
        email = f"load-{uuid.uuid4().hex[:8]}@example.com"
        status, user = call(base, "POST", "/users", {"email": email, "password": f"pw-{i}-load!"})
        if status != 201:
            raise SystemExit(f"load: creating a user failed with HTTP {status}; is the demo up?")
        call(base, "POST", f"/users/{user['id']}/roles", {"role": ROLES[i % len(ROLES)]})
        ids.append(int(user["id"]))
    return ids


_counts_lock = threading.Lock()


def worker(base: str, ids: list[int], until: float, counts: collections.Counter[str]) -> int:
    done = 0
    while time.monotonic() < until:
        uid = random.choice(ids)
        pick = random.random()
        if pick < 0.7:
            perm = random.choice(PERMISSIONS)
            status, _ = call(base, "POST", f"/users/{uid}/access-checks", {"permission": perm})
        elif pick < 0.9:
            status, _ = call(base, "GET", f"/users/{uid}")
        else:
            status, _ = call(base, "GET", f"/audit-events?user_id={uid}&limit=20")
        with _counts_lock:
            counts[str(status)] += 1
        done += 1
    return done


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.demo.load", description=__doc__)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the demo (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="duration (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=8, help="threads (default: %(default)s)")
    p.add_argument("--users", type=int, default=6, help="users to create (default: %(default)s)")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.concurrency < 1 or args.users < 1:
        p.error("--seconds must be > 0, --concurrency and --users >= 1")
    base = args.url.rstrip("/")
    try:
        ids = seed(base, args.users)
    except urllib.error.URLError as exc:
        print(
            f"load: cannot reach {base} ({exc.reason}); start it with python -m examples.demo",
            file=sys.stderr,
        )
        return 1
    counts: collections.Counter[str] = collections.Counter()
    began = time.monotonic()
    until = began + args.seconds
    with ThreadPoolExecutor(args.concurrency) as pool:
        total = sum(pool.map(lambda _: worker(base, ids, until, counts), range(args.concurrency)))
    elapsed = time.monotonic() - began
    print(f"{total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s), status: {dict(counts)}")
    _, stats = call(base, "GET", "/stats")
    print(json.dumps(stats, indent=2))
    return 0 if set(counts) == {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())

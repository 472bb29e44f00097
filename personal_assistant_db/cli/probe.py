"""``pa-db probe URL``: a curl-free HTTP probe for Docker's HEALTHCHECK."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url",
        nargs="?",
        default="http://127.0.0.1:8000/health/live",
        help="URL to GET (default: %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    if not args.url.startswith(("http://", "https://")):
        print("pa-db probe: URL must start with http:// or https://", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as response:  # noqa: S310
            status: int = response.status
    except urllib.error.HTTPError as exc:
        print(f"pa-db probe: HTTP {exc.code}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        print(f"pa-db probe: unreachable ({type(exc).__name__})", file=sys.stderr)
        return 1
    return 0 if 200 <= status < 300 else 1

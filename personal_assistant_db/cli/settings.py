"""``pa-db settings``: validate the environment and print the settings, secrets hidden."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from ..errors import ConfigurationError
from ..settings import Settings
from ..urls import render_url


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        if args.json:
            problems = [vars(p) for p in exc.problems]
            print(json.dumps({"ok": False, "problems": problems}, indent=2))
        else:
            print(f"pa-db: {exc}", file=sys.stderr)
        return 2
    shown = {
        f.name: getattr(settings, f.name) for f in fields(settings) if f.repr and f.name != "url"
    }
    migrate = settings.migrate_url
    shown = {
        "url": settings.safe_url,
        "migrate_url": render_url(migrate) if migrate else None,
        **shown,
        "health_token": "***" if settings.health_token else None,
    }
    if args.json:
        print(json.dumps({"ok": True, "settings": shown}, indent=2))
    else:
        width = max(len(k) for k in shown)
        for key, value in shown.items():
            print(f"{key:<{width}}  {value}")
    return 0

"""The ``pa-db`` console script.

Each subcommand lives in its own module, which exposes ``configure(parser)`` and
``run(args) -> int``; this file only wires them. Exit codes: 0 ok, 1 the check found a problem,
2 bad input or could not run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib import metadata

import structlog

from ..logs import redact_secrets

__all__ = ["main"]

# name -> (module, one-line help). Modules are imported lazily, when the parser is built.
COMMANDS: dict[str, tuple[str, str]] = {
    "settings": (
        "personal_assistant_db.cli.settings",
        "validate DATABASE_URL/DB_* and show them (redacted)",
    ),
    "probe": (
        "personal_assistant_db.cli.probe",
        "GET a health URL; exit 0 on 2xx (for Docker HEALTHCHECK)",
    ),
    "migrate": (
        "personal_assistant_db.cli.migrate",
        "schema migrations: status, apply, rollback, verify, lint, assess, unlock",
    ),
    "doctor": ("personal_assistant_db.cli.doctor", "optimization analysis: indexes, scans, pool"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pa-db", description="personal-assistant-db: PostgreSQL layer tools."
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(command)
        command.set_defaults(_run=module.run)
    return parser


def _version() -> str:
    try:
        return metadata.version("personal-assistant-db")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


def _logs_to_stderr() -> None:
    """The CLI is the host here: the package's logs go to stderr, warnings and up, secrets
    redacted, so that stdout carries nothing but the command's output (--json stays parseable)."""
    structlog.configure(
        processors=[redact_secrets, structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _logs_to_stderr()
    try:
        code: int = args._run(args)
    except KeyboardInterrupt:
        return 130
    return code

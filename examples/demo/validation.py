"""Request validation: each problem names the field, what was expected and (never for a
password) what was received. The app turns ``BadInput`` into HTTP 422."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

# The same shape the schema's users_email_format CHECK enforces, so the API answers first.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # roles.name, permissions.resource / .action
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class BadInput(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadInput("body", "expected a JSON object, got text that is not JSON") from None
    if not isinstance(body, dict):
        raise BadInput("body", f"expected a JSON object, got {type(body).__name__}")
    return body


def email(body: dict[str, Any]) -> str:
    value = body.get("email")
    if not isinstance(value, str) or not EMAIL.match(value) or len(value) > 320:
        raise BadInput("email", f"expected an address like ada@example.com, got {_shown(value)}")
    return value


def password(body: dict[str, Any]) -> str:
    value = body.get("password")
    if not isinstance(value, str):
        raise BadInput("password", "expected a string")
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise BadInput(
            "password", f"expected {MIN_PASSWORD} to {MAX_PASSWORD} characters (value not shown)"
        )
    return value


def display_name(body: dict[str, Any]) -> str | None:
    value = body.get("display_name")
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 200:
        raise BadInput("display_name", f"expected 1 to 200 characters, got {_shown(value)}")
    return value.strip()


def role(body: dict[str, Any]) -> str:
    value = body.get("role")
    if not isinstance(value, str) or not NAME.match(value):
        raise BadInput("role", f"expected a role name like premium, got {_shown(value)}")
    return value


def permission(body: dict[str, Any]) -> tuple[str, str]:
    value = body.get("permission")
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 2 or not all(NAME.match(p) for p in parts):
        raise BadInput(
            "permission", f"expected resource:action like tasks:write, got {_shown(value)}"
        )
    return parts[0], parts[1]


def user_id(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise BadInput("user_id", f"expected a positive whole number, got {_shown(raw)}")
    return int(raw)


def limit(raw: str | None, *, default: int = 50, maximum: int = 500) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadInput("limit", f"expected a whole number from 1 to {maximum}, got {_shown(raw)}")
    return int(raw)

"""The redaction processor, run through a real structlog pipeline."""

from __future__ import annotations

import string

import structlog
from hypothesis import given
from hypothesis import strategies as st

from personal_assistant_db import redact_secrets

# "Zq9" keeps a short secret from matching a key name ("mess" is in "message").
secrets = st.text(
    string.ascii_letters + string.digits + "!$&()*+,;=-._~", min_size=4, max_size=24
).map(lambda s: f"Zq9{s}")


@given(secrets)
def test_no_password_survives_the_processor(secret: str) -> None:
    rendered: list[str] = []

    def sink(logger: object, method: str, event_dict: dict[str, object]) -> str:
        line = structlog.processors.KeyValueRenderer()(logger, method, event_dict)
        rendered.append(line)
        raise structlog.DropEvent

    log = structlog.wrap_logger(None, processors=[redact_secrets, sink])
    log.warning(
        "db.connect.retry",
        url=f"postgresql://app:{secret}@db:5432/app",
        message=f"failed for postgres://u:{secret}@h/d and again",
        password=secret,
        token=secret,
    )
    assert secret not in rendered[0]
    assert "app:***@db:5432" in rendered[0]


def test_values_without_urls_are_untouched() -> None:
    event = redact_secrets(None, "info", {"event": "x", "count": 3, "note": "plain text"})
    assert event == {"event": "x", "count": 3, "note": "plain text"}

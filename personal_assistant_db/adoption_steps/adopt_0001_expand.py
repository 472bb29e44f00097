"""Adoption of ai_assistant's tables, phase 1: expand (``pa-db migrate adopt``).

The package's columns beside the legacy ones, sync triggers, views in schema ``pa_adopt``, and a
batched backfill. Not transactional: each table's DDL and each backfill batch is its own short
transaction. The rollback drops everything expand added; the legacy columns were never written.
"""

from yoyo import step

from personal_assistant_db.migrate.adoption.steps import expand_apply, expand_rollback

__transactional__ = False

step(expand_apply, expand_rollback)

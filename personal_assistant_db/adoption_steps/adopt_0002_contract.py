"""Adoption of ai_assistant's tables, phase 2: contract (``pa-db migrate contract``).

The legacy columns go, the package's columns take their names, constraints and indexes, and the
package migrations up to 0009 are recorded as applied. Its rollback is lossy (raw tokens and
backup codes are gone): ``pa-db migrate rollback`` asks for ``--allow-lossy``.
"""

from yoyo import step

from personal_assistant_db.migrate.adoption.steps import contract_apply, contract_rollback

__depends__ = {"adopt_0001_expand"}
__transactional__ = False

step(contract_apply, contract_rollback)

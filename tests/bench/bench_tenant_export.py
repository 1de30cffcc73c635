"""Benchmark: the export of one tenant with 1,000,000 rows on PostgreSQL, against plain COPY of the same rows.

Run: .venv/bin/python tests/bench/bench_tenant_export.py [--rows 1000000] [--rounds 3] [--import]

1. A throwaway PostgreSQL cluster (tests/servers.py); a database owned by a plain role (no superuser, no
   BYPASSRLS: the tables' FORCEd row-level security binds it, as in production), migrated as that owner;
   the backup key made.
2. Seeded as the superuser with INSERT ... SELECT generate_series: the tenant ``big`` (an owner, an app)
   with --rows app checks, and the tenant ``small`` with 10,000 (rows the export must not read). ANALYZE.
3. Each round, alternately first:
   - baseline: as the owner, in one REPEATABLE READ READ ONLY transaction with the tenant set (what the
     export's snapshot is), ``COPY (SELECT * FROM <table> WHERE <the tenant's rows>) TO STDOUT`` of every
     table the export reads, through psycopg's copy, written to a file;
   - export: `tenant_archive.export` in a child process (the archive in a file, as `appliance tenant
     export` writes it), timed inside the child around the call; the child's peak resident memory
     (ru_maxrss) and the resident memory before the call.
   Reported: seconds, rows/s, export / baseline (the figure), peak RSS, sizes. With --import, the archive
   of the last round is then imported once into a second database of the same cluster (timed; the rows
   per second of the insert path), and its audit chain verified.

Exit status 0 unless something fails (then 2, with the reason).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from appliance.config import Settings  # noqa: E402
from appliance.db import migrate  # noqa: E402
from appliance.db.session import Database  # noqa: E402
from appliance.services.access.actors import cli_operator  # noqa: E402
from appliance.services.backups import keys, tenant_archive, tenant_rows  # noqa: E402
from tests.servers import PostgresServer, ServerUnavailable  # noqa: E402

DATABASE = "forge"
OWNER, OWNER_PASSWORD = "forge_owner", "bench-owner-password"
APP, APP_PASSWORD = "forge_app", "bench-app-password"
BIG = "00000000-0000-4000-8000-000000000b16"
SMALL = "00000000-0000-4000-8000-0000000005a1"


def settings_for(data_dir: Path, server: PostgresServer, database: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database={
            "url": server.url(database, user=APP, password=APP_PASSWORD),
            "migrations_url": server.url(database, user=OWNER, password=OWNER_PASSWORD),
        },
    )


def make_database(server: PostgresServer, data_dir: Path, name: str) -> Settings:
    server.create_database(name, owner=OWNER)
    settings = settings_for(data_dir, server, name)
    migrate.upgrade(settings)
    return settings


SEED = """
INSERT INTO tenants (id, slug, name, plan, status, created_at, updated_at)
VALUES (%(big)s, 'big', 'Big', 'enterprise', 'active', now(), now()),
       (%(small)s, 'small', 'Small', 'free', 'active', now(), now());
INSERT INTO users (id, email, display_name, password_hash, is_operator, operator_read_only, is_active,
                   must_change_password, created_at, updated_at)
VALUES ('00000000-0000-4000-8000-00000000a001', 'owner@big.example', 'Owner', 'x', false, false, true, false,
        now(), now());
INSERT INTO memberships (id, tenant_id, user_id, role, created_at)
VALUES (gen_random_uuid(), %(big)s, '00000000-0000-4000-8000-00000000a001', 'owner', now());
INSERT INTO apps (id, tenant_id, name, kind, url, interval, timeout, expected_status, grace, fail_threshold,
                  recover_threshold, enabled, status, created_at, updated_at)
VALUES ('00000000-0000-4000-8000-0000000000a1', %(big)s, 'site', 'http', 'https://big.example/', 60, 10, 200,
        0, 3, 2, true, 'up', now(), now()),
       ('00000000-0000-4000-8000-0000000000a2', %(small)s, 'site', 'http', 'https://small.example/', 60, 10,
        200, 0, 3, 2, true, 'up', now(), now());
INSERT INTO app_checks (id, tenant_id, app_id, checked_at, ok, status_code, latency_ms, error)
SELECT gen_random_uuid(), %(big)s, '00000000-0000-4000-8000-0000000000a1',
       now() - n * interval '5 seconds', n %% 97 <> 0, CASE WHEN n %% 97 = 0 THEN 503 ELSE 200 END,
       random() * 300, CASE WHEN n %% 97 = 0 THEN 'wrong status 503' END
FROM generate_series(1, %(rows)s) AS n;
INSERT INTO app_checks (id, tenant_id, app_id, checked_at, ok, status_code, latency_ms)
SELECT gen_random_uuid(), %(small)s, '00000000-0000-4000-8000-0000000000a2', now() - n * interval '5 seconds',
       true, 200, random() * 300
FROM generate_series(1, 10000) AS n;
"""


def seed(server: PostgresServer, rows: int) -> None:
    with psycopg.connect(server.dsn(DATABASE)) as conn:
        for statement in filter(str.strip, SEED.split(";")):  # with parameters, one statement at a time
            conn.execute(statement, {"big": BIG, "small": SMALL, "rows": rows})
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def baseline(server: PostgresServer, target: Path) -> tuple[float, int]:
    """Seconds and bytes of COPY ... TO STDOUT of the tenant's rows of every table the export reads, as the
    owner, in one REPEATABLE READ snapshot with the tenant set."""
    started = time.perf_counter()
    written = 0
    with (
        psycopg.connect(server.dsn(DATABASE, user=OWNER, password=OWNER_PASSWORD)) as conn,
        target.open("wb") as out,
    ):
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (BIG,))
        members = "SELECT user_id FROM memberships WHERE tenant_id = %(t)s"
        for table in tenant_rows.moved_tables():
            if table.name == "tenants":
                where = "id = %(t)s"
            elif table.name == "users":
                where = f"id IN ({members})"
            elif table.name in tenant_rows.MEMBER_TABLES:
                where = f"user_id IN ({members})"
            else:
                where = "tenant_id = %(t)s"
            with conn.cursor().copy(
                f"COPY (SELECT * FROM {table.name} WHERE {where}) TO STDOUT", {"t": BIG}
            ) as copy:
                for data in copy:
                    out.write(data)
                    written += len(data)
        conn.rollback()
    return time.perf_counter() - started, written


def child_export(config: dict[str, Any]) -> None:
    """In the child: one export, timed around the call; its memory before and at the peak (KiB)."""
    server = _Attached(config["port"])
    settings = settings_for(Path(config["data_dir"]), server, DATABASE)  # type: ignore[arg-type]
    key = keys.load(settings.backup_key_file)
    owner = Database(settings, settings.migrations_url, bounded=False)
    with owner.engine.connect():
        pass  # the pool's first connection, before the clock starts
    before = _rss_kib()
    cpu = time.process_time()
    started = time.perf_counter()
    done = tenant_archive.export(
        owner,
        "big",
        directory=settings.backup_dir,
        recipient=key.recipient,
        actor=cli_operator(),
        now=dt.datetime.now(dt.UTC),
        target=Path(config["target"]),
    )
    seconds = time.perf_counter() - started
    owner.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": time.process_time() - cpu,
                "rows": sum(done.rows.values()),
                "size": done.size,
                "rss_before_kib": before,
                "rss_peak_kib": peak,
            }
        )
    )


class _Attached:
    """The cluster's URLs in the child (the parent owns the server)."""

    def __init__(self, port: int):
        self.port = port

    def url(self, database: str, user: str | None = None, password: str | None = None) -> str:
        credentials = f"{user}:{password}@" if user else "postgres@"
        return f"postgresql+psycopg://{credentials}127.0.0.1:{self.port}/{database}"


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def export_in_child(server: PostgresServer, data_dir: Path, target: Path) -> dict[str, Any]:
    config = {"port": server.port, "data_dir": str(data_dir), "target": str(target)}
    run = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)], capture_output=True, text=True, check=False
    )
    if run.returncode != 0:
        raise RuntimeError(f"the export failed: {run.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def import_once(server: PostgresServer, data_dir: Path, archive: Path) -> tuple[float, int, bool]:
    from appliance.services.audit import verify as audit_verify

    settings = make_database(server, data_dir / "target", f"{DATABASE}_target")
    source_key = keys.load(settings_for(data_dir / "data", server, DATABASE).backup_key_file)
    owner = Database(settings, settings.migrations_url, bounded=False)
    try:
        started = time.perf_counter()
        done = tenant_archive.import_archive(
            owner, archive, list(source_key.identities), scratch=data_dir / "scratch", actor=cli_operator()
        )
        seconds = time.perf_counter() - started
        (report,) = audit_verify.verify_all(owner, slug="big")
    finally:
        owner.dispose()
    return seconds, sum(done.rows.values()), report.ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--import", dest="import_", action="store_true", help="also import the archive once")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_export(json.loads(args.child))
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-tenant-export-"))
    server = PostgresServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        print(f"error: no PostgreSQL server: {exc}", file=sys.stderr)
        return 2
    try:
        server.create_role(OWNER, OWNER_PASSWORD)
        server.create_role(APP, APP_PASSWORD)
        settings = make_database(server, work / "data", DATABASE)
        keys.create(settings.backup_key_file)
        started = time.perf_counter()
        seed(server, args.rows)
        print(
            f"seeded {args.rows:,} app checks of 'big' (+10,000 of 'small')"
            f" in {time.perf_counter() - started:.1f} s"
        )
        results = []
        archive = work / "big.age"
        for number in range(1, args.rounds + 1):
            copy_file = work / "baseline.copy"
            order = ("baseline", "export") if number % 2 else ("export", "baseline")
            measured: dict[str, Any] = {}
            for which in order:
                if which == "baseline":
                    measured["baseline"], measured["copy_bytes"] = baseline(server, copy_file)
                else:
                    archive.unlink(missing_ok=True)
                    measured["export"] = export_in_child(server, work / "data", archive)
            copy_file.unlink()
            results.append(measured)
            export = measured["export"]
            rows, seconds, copy_s = export["rows"], export["seconds"], measured["baseline"]
            before, peak = export["rss_before_kib"] / 1024, export["rss_peak_kib"] / 1024
            print(
                f"round {number}: export {seconds:.2f} s ({rows / seconds:,.0f} rows/s,"
                f" CPU {export['cpu']:.2f} s), COPY {copy_s:.2f} s ({rows / copy_s:,.0f} rows/s),"
                f" export / COPY {seconds / copy_s:.2f};"
                f" RSS {before:.0f} MB before, peak {peak:.0f} MB;"
                f" archive {export['size'] / 1e6:.1f} MB, COPY text {measured['copy_bytes'] / 1e6:.1f} MB"
            )

        def spread(values: list[float], fmt: str) -> str:
            return f"{format(min(values), fmt)}-{format(max(values), fmt)}"

        exports = [r["export"] for r in results]
        print()
        print("| rows | export s | rows/s | COPY s | export / COPY | peak RSS MB | archive MB |")
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {exports[0]['rows']:,} | {spread([e['seconds'] for e in exports], '.2f')} "
            f"| {spread([e['rows'] / e['seconds'] for e in exports], ',.0f')} "
            f"| {spread([r['baseline'] for r in results], '.2f')} "
            f"| {spread([r['export']['seconds'] / r['baseline'] for r in results], '.2f')} "
            f"| {spread([e['rss_peak_kib'] / 1024 for e in exports], '.0f')} "
            f"| {spread([e['size'] / 1e6 for e in exports], '.1f')} |"
        )
        if args.import_:
            seconds, rows, ok = import_once(server, work, archive)
            print(
                f"import: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s),"
                f" audit chain ok: {ok}"
            )
        return 0
    except Exception as exc:  # a benchmark that cannot run says why, in one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())

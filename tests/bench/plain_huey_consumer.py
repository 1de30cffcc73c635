"""The baseline of bench_jobs.py: a plain Huey consumer (no job rows) with one no-op task on Redis.

Run as ``python plain_huey_consumer.py REDIS_URL QUEUE_NAME WORKERS``; enqueue with ``noop()`` after
``configure(url, name)`` in the benchmark process."""

from __future__ import annotations

import os
import sys
from typing import Any

from huey import RedisHuey

huey: Any = None


def configure(url: str, name: str) -> Any:
    global huey  # noqa: PLW0603  (the baseline's one instance)
    huey = RedisHuey(name, url=url, results=False, utc=True)

    @huey.task(name="bench.noop")  # type: ignore[untyped-decorator]
    def noop() -> None:
        huey.storage.conn.incr(f"{name}:done")

    huey.noop = noop
    return huey


if __name__ == "__main__":
    # Huey names a task after its module: configure through the module the benchmark imported, so that
    # the consumer's registry holds "plain_huey_consumer.bench.noop", not "__main__.bench.noop".
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import plain_huey_consumer  # type: ignore[import-not-found]

    instance = plain_huey_consumer.configure(sys.argv[1], sys.argv[2])
    instance.create_consumer(workers=int(sys.argv[3]), worker_type="thread", periodic=False).run()

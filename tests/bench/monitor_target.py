"""The probe target of tests/bench/bench_monitoring.py: an HTTP/1.1 keep-alive server answering 200 at once,
noting when each request arrived.

Run: python tests/bench/monitor_target.py OUT. It prints its port on the first line of stdout, then serves on
127.0.0.1 until SIGTERM or SIGINT, when it writes every arrival to OUT as JSON lines
``[monotonic, path, connection]`` (connections numbered from 1 as they are accepted) and exits.
``time.monotonic()`` is CLOCK_MONOTONIC, shared by every process of the machine, so the benchmark compares
these times with its own. One asyncio loop with plain streams: a few microseconds of CPU
per request, so the target takes as little of the machine from the worker under test as it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


async def serve(out: Path) -> None:
    arrivals: list[tuple[float, str, int]] = []
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        connection = connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")  # a GET: no body
                arrivals.append((time.monotonic(), head.split(b" ", 2)[1].decode(), connection))
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    server.close()  # not wait_closed(): the worker's keep-alive connections may still be open
    with out.open("w") as file:
        for arrival in arrivals:
            file.write(json.dumps(arrival) + "\n")


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(Path(sys.argv[1])))


if __name__ == "__main__":
    main()

"""Log setup for every appliance process: one JSON object per line, with the request id when there is one."""

from __future__ import annotations

import logging
import os
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

#: The id of the HTTP request being served, set by the API's middleware and read by every log line.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}
_factory_installed = False


def install_request_id_factory() -> None:
    """Stamp every log record with the current request id when it is created (not when it is formatted,
    which a buffering handler may do later, outside the request)."""
    global _factory_installed  # noqa: PLW0603  (a process-wide hook, installed once)
    if _factory_installed:
        return
    base = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; extra attributes given to the logger become fields."""

    def __init__(self, process_name: str):
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process_name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key != "color_message":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


#: C0 control characters and DEL written as escapes in a plain-text line: a request path may carry any of
#: them percent-encoded (``%0A``, ``%00``), and written raw they would forge a line or hide one.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}


class TextFormatter(logging.Formatter):
    """A plain line for reading by eye, still carrying the request id."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The record's own line (a traceback that follows keeps its line breaks).
        return super().formatMessage(record).translate(_CONTROLS)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id else line


class AccessLog:
    """One line per HTTP request, on the hot path of every request: written without the logging machinery
    (a LogRecord, the caller lookup, the handler lock and the formatter cost about 20 us a request), as one
    unbuffered write, so that lines of several API processes sharing a file never interleave. The fields
    are those of JsonFormatter."""

    def __init__(self, process_name: str, fd: int = 2):
        self.process_name = process_name
        self.fd = fd
        self._second = -1
        self._stamp = ""

    def _time(self, now: float) -> str:
        second = int(now)
        if second != self._second:  # the part up to the second changes once a second
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def __call__(self, method: str, path: str, status: int, duration_ms: float, route: str) -> None:
        line = orjson.dumps(
            {
                "time": self._time(time.time()),
                "level": "info",
                "logger": "appliance.access",
                "process": self.process_name,
                "message": f"{method} {path} {status}",
                "request_id": request_id_var.get(),
                "status": status,
                "duration_ms": duration_ms,
                "route": route,
            }
        )
        os.write(self.fd, line + b"\n")


def text_access_log(method: str, path: str, status: int, duration_ms: float, route: str) -> None:
    """The access line through logging, for the plain-text format."""
    logging.getLogger("appliance.access").info(
        "%s %s %d", method, path, status, extra={"status": status, "duration_ms": duration_ms, "route": route}
    )


#: Libraries whose INFO lines say, for every request, what the appliance's own records say better.
QUIET_LIBRARIES = ("httpx", "httpcore")


def setup(level: str, json_format: bool, process_name: str) -> None:
    """Route every logger (ours, uvicorn's, huey's) to stderr in the chosen format."""
    install_request_id_factory()
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        formatter: logging.Formatter = JsonFormatter(process_name)
    else:
        formatter = TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "huey", "huey.consumer"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our middleware writes the access line (with the request id); uvicorn's own would duplicate it.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx writes an INFO line for every request it sends: every monitoring probe and webhook delivery,
    # which the appliance records itself. Their warnings and errors still show; at DEBUG, everything.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)

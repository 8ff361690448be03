"""Logging set-up: plain text for a terminal, or one JSON object per line for a collector.

Request lines carry their fields as ``extra`` (``method``, ``code``, ``ms``, ``peer``,
``transport``), so the JSON form has them as keys, not inside a sentence; a line written
inside a traced request (tracing on: service/tracing.py) also has its ``trace_id``. The standard
library's logging does the work; a 20-line formatter is not worth a dependency.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from sovrisk.service.tracing import current_trace_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Fields a request line adds (interceptors.py, gateway/app.py).
REQUEST_FIELDS = ("transport", "method", "code", "ms", "peer", "path")
FORMATS = ("text", "json")
HANDLER_NAME = "sovrisk"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in REQUEST_FIELDS:
            if key in record.__dict__:
                doc[key] = record.__dict__[key]
        if (trace_id := current_trace_id()) is not None:
            doc["trace_id"] = trace_id
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure(level: str, fmt: str = "text") -> None:
    """The root logger at ``level``, writing ``text`` or ``json`` lines to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)  # ours from an earlier call; others' (pytest's) stay
    root.addHandler(handler)
    root.setLevel(level.upper())


#: What gRPC's asyncio server logs, at ERROR with a traceback, when it cannot send a reply
#: because the call has already ended: the client's deadline passed or it went away between
#: the handler's return and the send (a race no handler can close; grpc/grpc#32551 made it
#: this log line instead of an unhandled task exception). Nothing failed on our side.
ENDED_CALL_MESSAGE = "ExecuteBatchError raised in core by servicer method"


class EndedCallFilter(logging.Filter):
    """gRPC's ERROR and traceback for a reply to a call that had already ended, as one INFO
    line (on the ``grpc._cython.cygrpc`` logger: see :func:`quiet_ended_calls`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith(ENDED_CALL_MESSAGE):
            method = record.getMessage()[len(ENDED_CALL_MESSAGE) :].strip()
            error = record.exc_info[1] if record.exc_info else None
            record.msg = "reply to %s not sent: the call had ended (deadline or client gone): %r"
            record.args = (method, error)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


def quiet_ended_calls() -> None:
    """Install :class:`EndedCallFilter` on gRPC's server logger (once)."""
    grpc_logger = logging.getLogger("grpc._cython.cygrpc")
    if not any(isinstance(f, EndedCallFilter) for f in grpc_logger.filters):
        grpc_logger.addFilter(EndedCallFilter())

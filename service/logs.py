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

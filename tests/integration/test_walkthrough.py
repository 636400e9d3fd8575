"""The README's walk-through, run from its own text against a real ``hookpost run`` and
``hookpost receiver``: its commands cannot drift from what hookpost does."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import ADMIN_KEY
from tests.integration.live import free_port, start_run, wait_ready

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent  # hookpost and python3 of this environment


def _blocks() -> list[str]:
    text = README.read_text()
    section = text.split("## A walk-through with curl", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)


def _script(blocks: list[str], api: str, receiver_port: int, log: Path) -> str:
    """The walk-through's blocks after the first (which starts hookpost: the test does), with
    this run's ports. Two lines of glue stand for what a person does by hand: read the secret
    the endpoint block printed, and wait for the receiver to listen."""
    lines = ["set -euo pipefail"]
    for block in blocks[1:]:
        block = block.replace("http://127.0.0.1:8000", api)
        block = block.replace("127.0.0.1:9000", f"127.0.0.1:{receiver_port}")
        block = block.replace("--port 9000", f"--port {receiver_port}")
        if "hookpost receiver" in block:
            command = block.strip().replace("whsec_...", '"$SECRET"')
            lines.append(f"{command} > {log} 2>&1 &")
            lines.append(f"echo $! > {log}.pid")
            lines.append(
                f"until curl -s -o /dev/null 127.0.0.1:{receiver_port}; do sleep 0.1; done"
            )
            continue
        lines.append(block)
        if "EP=$(" in block:
            lines.append(
                f'SECRET=$(curl -s {api}/v1/endpoints/$EP/secret -H "authorization: Bearer $KEY"'
                " | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"key\"])')"
            )
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl")
def test_the_readme_walkthrough_works_verbatim(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    blocks = _blocks()
    assert "HOOKPOST_ALLOWED_NETWORKS=127.0.0.0/8 hookpost run" in blocks[0]
    port, receiver_port = free_port(), free_port()
    api = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKPOST_")} | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOOKPOST_DATABASE_URL": database_url,
        "HOOKPOST_DATA_DIR": str(tmp_path),
        "HOOKPOST_ADMIN_API_KEY": ADMIN_KEY,
        "HOOKPOST_SECRET_KEY": Fernet.generate_key().decode(),
        "HOOKPOST_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    log = tmp_path / "receiver.log"
    process = start_run(port, env)
    try:
        wait_ready(api, process)
        done = subprocess.run(
            ["bash", "-c", _script(blocks, api, receiver_port, log)],
            env=env | {"KEY": ADMIN_KEY},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert '"uid":"acme"' in done.stdout
        deadline = time.monotonic() + 30
        while "invoice.paid" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        received = log.read_text()
        assert "POST /webhooks: invoice.paid evt_" in received
        assert "(signature verified)" in received
        assert '"invoice_id":"in_1234"' in received
        assert httpx.get(f"{api}/readyz").status_code == 200
    finally:
        pid = tmp_path / "receiver.log.pid"
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()], check=False)
        process.terminate()
        process.communicate(timeout=30)

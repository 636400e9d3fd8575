"""The Svix API with the npm ``svix`` SDK (2.x, ``tests/js``): an application, an event type
with a schema, an endpoint with channels, a message with an ``eventId`` (its repeat a
conflict), the delivery verified by the SDK's own ``Webhook``, its attempt listed, and the
applications paged through. CI installs the package (``.ci/run``); elsewhere, without node or
``npm ci`` in ``tests/js``, the test says it is skipped and why."""

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hookpost.app import create_app
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.integration.delivery_helpers import running_worker
from tests.integration.live import serving
from tests.receiver import receiver

JS = Path(__file__).parents[1] / "js"
NODE = shutil.which("node")
INSTALLED = (JS / "node_modules" / "svix").is_dir()
needs_sdk = pytest.mark.skipif(
    (NODE is None or not INSTALLED) and not os.environ.get("CI"),
    reason="the npm svix SDK is not installed: run `npm ci` in tests/js (node is needed)",
)


def _node(mode: str, env: dict[str, str], stdin: str = "") -> dict[str, object]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(JS / "flow.mjs"), mode],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


@needs_sdk
async def test_a_svix_users_flow_with_the_npm_sdk(settings: Settings) -> None:
    async with receiver() as target, running_worker(settings):
        with serving(create_app(settings)) as url:
            env = {
                "HOOKPOST_URL": url,
                "HOOKPOST_KEY": ADMIN_KEY,
                "RECEIVER_URL": f"{target.url}/ci",
            }
            # in a thread: the worker runs on this loop, and must go on while node waits
            sent = await asyncio.to_thread(_node, "send", env)
            assert sent["conflict"] == 409
            [request] = await target.wait_for(1)
            checked = await asyncio.to_thread(
                _node,
                "check",
                env,
                json.dumps(
                    {
                        "appId": sent["appId"],
                        "endpointId": sent["endpointId"],
                        "secret": sent["secret"],
                        "body": request.body.decode(),
                        "headers": request.headers,
                    }
                ),
            )
    verified = checked["verified"]
    assert isinstance(verified, dict)
    assert verified == {"build": 1, "ok": True}  # the payload itself, as Svix sends it
    assert checked["attempts"] == [{"status": 0, "code": 200, "msgId": sent["messageId"]}]
    assert checked["uids"] == ["globex", *(f"page-{n}" for n in range(5))]

"""The simulator answers as Green API documents it: the vendor's own Python SDK reads it.

``whatsapp-api-client-python`` (requirements-sdk.txt) runs in a virtualenv of its own,
``.venv-sdk``, which ``make test`` installs; it calls the simulator over HTTP as it calls
api.green-api.com, and prints what its response objects hold.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from greenapi_simulator import GreenApiSimulator

SDK_PYTHON = Path(__file__).resolve().parents[1] / ".venv-sdk" / "bin" / "python"
INSTANCE = "1101990001"

# Run by the SDK's interpreter. One call per method and second: the simulator enforces the
# vendor's per-method rate limits, as Green API does; its clock is moved on (control API) before the
# second showMessagesQueue, rather than waited for.
READ = """
import json, sys, urllib.request
from whatsapp_api_client_python import API

host, instance_id, token = sys.argv[1:4]
api = API.GreenApi(instance_id, token, host=host)
calls = [("state", api.account.getStateInstance), ("status", api.account.getStatusInstance),
         ("settings", api.account.getSettings), ("queue", api.queues.showMessagesQueue)]
out = {}
for name, call in calls:
    answer = call()
    out[name] = {"code": answer.code, "data": answer.data, "error": answer.error}
urllib.request.urlopen(urllib.request.Request(host + "/_sim/clock", data=b'{"advance": 1.1}', method="POST"))
again = api.queues.showMessagesQueue()
out["queue_again"] = {"code": again.code, "data": again.data, "error": again.error}
print(json.dumps(out))
"""


def read_with_the_sdk(sim: GreenApiSimulator, token: str) -> dict[str, Any]:
    assert SDK_PYTHON.exists(), "the vendor's SDK is not installed: make test installs it (.venv-sdk)"
    done = subprocess.run([str(SDK_PYTHON), "-c", READ, sim.url, INSTANCE, token], capture_output=True, text=True,
                          timeout=60, env={"PATH": os.environ["PATH"]})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert token not in done.stdout + done.stderr
    return json.loads(done.stdout)


def test_the_vendor_sdk_reads_settings_queue_and_socket_status(sim):
    token = f"sdk-{os.urandom(8).hex()}"
    hook = "https://bot.example.com/hook"
    sim.add_instance(INSTANCE, token, settings={"webhookUrl": hook, "incomingWebhook": "no"},
                     queue_length=3, queue_growth=2, socket_status="offline")  # fmt: skip
    read = read_with_the_sdk(sim, token)

    assert read["state"] == {"code": 200, "data": {"stateInstance": "authorized"}, "error": None}
    assert read["status"] == {"code": 200, "data": {"statusInstance": "offline"}, "error": None}
    settings = read["settings"]["data"]
    assert read["settings"]["code"] == 200
    assert settings["webhookUrl"] == hook and settings["incomingWebhook"] == "no"
    assert settings["wid"] == f"{INSTANCE}@c.us" and settings["stateWebhook"] == "no"  # the defaults stay
    # Each showMessagesQueue call adds queue_growth messages: 3 + 2, then 7.
    assert read["queue"]["code"] == 200 and len(read["queue"]["data"]) == 5
    assert len(read["queue_again"]["data"]) == 7
    first = read["queue"]["data"][0]
    assert set(first) == {"idMessage", "type", "body"} and first["body"]["chatId"].endswith("@c.us")


def test_a_draining_queue_and_a_socket_that_follows_the_state(sim):
    token = f"sdk-{os.urandom(8).hex()}"
    sim.add_instance(INSTANCE, token, state="notAuthorized", queue_length=3, queue_growth=-2)
    read = read_with_the_sdk(sim, token)

    assert read["state"]["data"] == {"stateInstance": "notAuthorized"}
    assert read["status"]["data"] == {"statusInstance": "offline"}
    assert len(read["queue"]["data"]) == 1  # 3 - 2
    assert read["queue_again"] == {"code": 200, "data": [], "error": None}  # never below empty


# The SDK's partner client: a getInstances failing (scripted, once), then the listing, a createInstance
# whose token the SDK's instance client uses, a deleteInstanceAccount and the listing after it. The
# tokens stay in the process: it prints whether the listings hold the right ones.
PARTNER = """
import json, sys
from whatsapp_api_client_python import API

host, partner_token = sys.argv[1:3]
partner = API.GreenApiPartner(partner_token, host=host).partner
answer = lambda a: {"code": a.code, "data": a.data, "error": a.error}
failed, listed = partner.getInstances(), partner.getInstances()
created = partner.createInstance({"name": "From the SDK", "webhookUrl": "https://bot.example.com/hook"})
new_id, new_token = created.data["idInstance"], created.data.pop("apiTokenInstance")
state = API.GreenApi(str(new_id), new_token, host=host).account.getStateInstance()
deleted = partner.deleteInstanceAccount(new_id)
after = partner.getInstances()
before_tokens = {row["idInstance"]: row.pop("apiTokenInstance") for row in listed.data}
after_tokens = {row["idInstance"]: row.pop("apiTokenInstance") for row in after.data}
print(json.dumps({
    "failed": answer(failed), "listed": answer(listed), "created": answer(created), "state": answer(state),
    "deleted": answer(deleted), "after": answer(after),
    "tokens_listed": new_token not in before_tokens.values() and after_tokens == {**before_tokens, new_id: new_token},
}))
"""


def listed(answer: dict[str, Any]) -> list[tuple[int, str, bool]]:
    assert answer["code"] == 200, answer
    return [(row["idInstance"], row["name"], row["deleted"]) for row in answer["data"]]


def test_the_vendor_sdk_lists_creates_and_deletes_through_the_partner_api(sim):
    partner_token = f"partner-{os.urandom(8).hex()}"
    once = {"mode": "http", "status": 500, "times": 1}
    sim.add_partner(partner_token, count=2, id_start=1101990101, faults={"getInstances": once})
    assert SDK_PYTHON.exists(), "the vendor's SDK is not installed: make test installs it (.venv-sdk)"
    done = subprocess.run([str(SDK_PYTHON), "-c", PARTNER, sim.url, partner_token], capture_output=True, text=True,
                          timeout=60, env={"PATH": os.environ["PATH"]})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert partner_token not in done.stdout + done.stderr
    read = json.loads(done.stdout)

    assert read["failed"]["code"] == 500 and "Internal Server Error" in read["failed"]["error"]
    assert listed(read["listed"]) == [(1101990101, "Client 001", False), (1101990102, "Client 002", False)]
    assert read["created"]["code"] == 200
    assert read["created"]["data"] == {
        "idInstance": 1101990103,
        "typeInstance": "whatsapp",
        "apiUrl": sim.url,
        "mediaUrl": sim.url,
    }
    assert read["state"]["data"] == {"stateInstance": "authorized"}
    assert read["deleted"] == {"code": 200, "data": {"deleteInstanceAccount": True}, "error": None}
    assert listed(read["after"])[2] == (1101990103, "From the SDK", True)
    assert read["after"]["data"][2]["timeDeleted"] != "0001-01-01T00:00:00"
    assert read["tokens_listed"] is True
    assert [r["method"] for r in sim.requests_log()] == [
        "getInstances", "getInstances", "createInstance", "getStateInstance", "deleteInstanceAccount", "getInstances"
    ]  # fmt: skip

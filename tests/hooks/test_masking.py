"""A shard's connections read with one secrets-masker update (greenapi.masking).

The adapter and the loader against Airflow's own SecretsMasker and secrets backends (connections
from environment variables, as here). That a real task's supervisor expands the bundle too is
proven under the scheduler in tests/e2e/test_scheduled_run.py.
"""

from __future__ import annotations

import json
import re

import pytest
from airflow.sdk._shared.secrets_masker import SecretsMasker, _secrets_masker, redact

from greenapi.masking import ADAPTER, bundle, expand_bundle, load_connections


def test_a_bundle_expands_to_its_secrets_and_nothing_else_expands():
    carried, apart = bundle(["TOKEN-SECRET-aaaaaaaaaaaaaaaa", '{"k": "v"}', "with\x00nul"])
    assert expand_bundle(carried) == ["TOKEN-SECRET-aaaaaaaaaaaaaaaa", '{"k": "v"}']
    assert apart == ["with\x00nul"]
    assert expand_bundle("TOKEN-SECRET-aaaaaaaaaaaaaaaa") == []
    assert expand_bundle("") == []


def test_a_masker_with_the_adapter_hides_every_secret_of_a_bundle_after_one_compile(monkeypatch):
    masker = SecretsMasker()
    masker.secret_mask_adapter = expand_bundle
    compiles = []
    real_compile = re.compile
    monkeypatch.setattr(re, "compile", lambda *a, **k: compiles.append(1) or real_compile(*a, **k))
    secrets = [f"TOKEN-SECRET-{i:016x}" for i in range(300)]
    masker.add_mask(bundle(secrets)[0])
    assert len(compiles) == 1
    line = f"GET /waInstance1/getStateInstance/{secrets[0]} then {secrets[299]}"
    assert masker.redact(line) == "GET /waInstance1/getStateInstance/*** then ***"
    masker.add_mask(secrets[7])  # what Airflow does when the connection itself is loaded: nothing new
    assert len(compiles) == 1


def test_without_the_adapter_the_loader_steps_aside(monkeypatch):
    monkeypatch.setenv("AIRFLOW__LOGGING__SECRET_MASK_ADAPTER", "urllib.parse.quote")
    assert load_connections(["green_api_anything"]) is None


def test_the_loader_reads_each_connection_and_masks_its_password_and_extra(monkeypatch):
    monkeypatch.setenv("AIRFLOW__LOGGING__SECRET_MASK_ADAPTER", ADAPTER)
    masker = _secrets_masker()
    monkeypatch.setattr(masker, "secret_mask_adapter", expand_bundle)
    monkeypatch.setattr(masker, "patterns", set(masker.patterns))
    monkeypatch.setattr(masker, "replacer", masker.replacer)
    extra = json.dumps({"state_timeout": 3, "dashboard_url": "https://example.com/board-XYZ-0123"})
    for i in range(3):
        monkeypatch.setenv(f"AIRFLOW_CONN_GREEN_API_MASKTEST_{i}", json.dumps(
            {"conn_type": "greenapi", "host": "http://127.0.0.1:1", "login": f"110{i}000000",
             "password": f"TOKEN-SECRET-masktest{i:08d}", "extra": extra}))  # fmt: skip
    found = load_connections(["green_api_masktest_0", "green_api_masktest_2", "green_api_nowhere"])
    assert found is not None
    assert found["green_api_nowhere"] is None
    assert [found[c].password for c in ("green_api_masktest_0", "green_api_masktest_2")] == [
        "TOKEN-SECRET-masktest00000000", "TOKEN-SECRET-masktest00000002"]  # fmt: skip
    said = f"token TOKEN-SECRET-masktest00000002, extra {extra}"
    assert redact(said) == "token ***, extra ***"
    assert redact("TOKEN-SECRET-masktest00000001") == "TOKEN-SECRET-masktest00000001"  # not asked for, not read


@pytest.mark.parametrize("setting", ["", "greenapi.masking.expand_bundle "])
def test_the_setting_is_read_as_written(monkeypatch, setting):
    monkeypatch.setenv("AIRFLOW__LOGGING__SECRET_MASK_ADAPTER", setting)
    assert (load_connections([]) is not None) is bool(setting)

#!/usr/bin/env python
"""
Benchmark: loading N env-var connections through the Airflow 3.3.2 Task SDK, and the cost of the
secrets masker (re.compile of one big alternation per *new* secret).

Usage (one measurement per fresh process; docs/benchmarks.md has the matrix):
    .venv/bin/python scripts/bench_connections.py N MODE [--extra]

MODES
  hook         BaseHook.get_connection(id) for every id. No supervisor comms -> ensure_secrets_backend_loaded()
               uses the fallback chain [EnvironmentVariablesBackend].
  hook_sup     same, but with a fake SUPERVISOR_COMMS installed (worker chain [EnvVar, ExecutionAPI]); each
               MaskSecret message is applied to a second SecretsMasker, exactly like the supervisor's
               handle_mask_secret -> mask_secret -> add_mask. Reports task-side and "supervisor"-side time.
  mask_list    mask_secret([all passwords]) once (iterable form), then the hook loop. Shows that the iterable
               form of mask_secret does NOT batch the compile.
  prereg       bulk-register every password (and extra) in the masker's pattern set, compile ONCE
               (private API: _secrets_masker(), .patterns, .replacer, ._adaptations), then the hook loop:
               add_mask finds every pattern already present -> no recompiles.
  prereg_sup   prereg + fake supervisor (supervisor still receives one MaskSecret per secret and compiles
               each time -> still quadratic on that side).
  adapter_sup  prereg on the task side + the supervisor is told about all secrets in ONE MaskSecret using a
               [logging] secret_mask_adapter that expands a "bundle" string (simulated on both maskers).
  adapter_pub_sup  like adapter_sup but no private API on the task side: a single public mask_secret(bundle)
               registers everything (adapter expands it) -> one compile in each process.
  direct       EnvironmentVariablesBackend + Connection.from_json for each id, no per-connection masking,
               then one bulk registration (same bulk helper as prereg). No supervisor.

--extra  adds "extra": {"token": "...", "region": "eu"} to each connection.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets as pysecrets
import shutil
import sys
import tempfile
import time

N = int(sys.argv[1])
MODE = sys.argv[2]
WITH_EXTRA = "--extra" in sys.argv[3:]

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="bench-connections-")
atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

PASSWORDS: dict[str, str] = {}
EXTRA_TOKENS: dict[str, str] = {}
for i in range(N):
    pw = f"tok-{pysecrets.token_hex(16)}"
    PASSWORDS[f"bench_{i}"] = pw
    body = {"conn_type": "greenapi", "host": "http://127.0.0.1:8765", "login": f"12{i:08d}", "password": pw}
    if WITH_EXTRA:
        tok = f"xtok-{pysecrets.token_hex(12)}"
        EXTRA_TOKENS[f"bench_{i}"] = tok
        body["extra"] = {"token": tok, "region": "eu"}
    os.environ[f"AIRFLOW_CONN_BENCH_{i}"] = json.dumps(body)

t_import0 = time.perf_counter()
from airflow.sdk import BaseHook  # noqa: E402
from airflow.sdk._shared.secrets_masker import (  # noqa: E402
    SecretsMasker,
    _secrets_masker,
    redact,
)
from airflow.sdk._shared.secrets_masker.secrets_masker import SECRETS_TO_SKIP_MASKING  # noqa: E402

t_import = time.perf_counter() - t_import0
IDS = list(PASSWORDS)


# --------------------------------------------------------------------------------------------------
# Count re.compile calls made by the masker module (wraps the module's `re` reference; counting only).
import airflow.sdk._shared.secrets_masker.secrets_masker as _sm_mod  # noqa: E402

COMPILES = {"n": 0, "t": 0.0}


class _CountingRe:
    def __getattr__(self, name):
        return getattr(re, name)

    @staticmethod
    def compile(pattern, flags=0):
        t0 = time.perf_counter()
        try:
            return re.compile(pattern, flags)
        finally:
            COMPILES["n"] += 1
            COMPILES["t"] += time.perf_counter() - t0


_sm_mod.re = _CountingRe()


# --------------------------------------------------------------------------------------------------
# Bulk registration: the same filtering as SecretsMasker.add_mask (secrets_masker.py:596-637) but a
# single re.compile at the end. Private API: _secrets_masker(), .patterns, .replacer, ._adaptations.
def bulk_mask(secrets, masker: SecretsMasker | None = None) -> None:
    m = masker or _secrets_masker()
    new = set()
    for s in secrets:
        if not isinstance(s, str) or not s or s.lower() in SECRETS_TO_SKIP_MASKING:
            continue
        if len(s) < m.min_length_to_mask:
            continue
        for a in m._adaptations(s):
            if a and len(a) >= m.min_length_to_mask and a.lower() not in SECRETS_TO_SKIP_MASKING:
                new.add(re.escape(a))
    new -= m.patterns
    if new:
        m.patterns |= new
        m.replacer = _sm_mod.re.compile("|".join(m.patterns))  # == re.compile, counted


def env_secrets(conn_ids):
    """Passwords + raw extra strings + sensitive extra values, exactly what the load path will mask."""
    from airflow.sdk.definitions.connection import Connection

    m = _secrets_masker()
    out = []
    for cid in conn_ids:
        raw = os.environ.get("AIRFLOW_CONN_" + cid.upper())
        if not raw:
            continue
        c = Connection.from_json(raw, conn_id=cid) if raw.strip()[0] == "{" else Connection.from_uri(raw, cid)
        if c.password:
            out.append(c.password)
        if c.extra:
            out.append(c.extra)  # _mask_connection_secrets masks the raw extra string, context.py:160-161
            try:
                ex = json.loads(c.extra)
            except ValueError:
                ex = None
            if isinstance(ex, dict):  # extra_dejson masks values of sensitive keys, connection.py:321
                stack = [ex]
                while stack:
                    d = stack.pop()
                    for k, v in d.items():
                        if isinstance(v, dict):
                            stack.append(v)
                        elif isinstance(v, str) and m.should_hide_value_for_key(k):
                            out.append(v)
    return out


# --------------------------------------------------------------------------------------------------
# Fake supervisor comms (simulates supervisor.py:1938 -> request_handlers.handle_mask_secret).
SUP = {"masker": None, "t": 0.0, "msgs": 0}
BUNDLE_SEP = "\x1e"
BUNDLE_PREFIX = "\x1eairflow-mask-bundle\x1e"


def bundle_adapter(secret: str):
    """What a [logging] secret_mask_adapter could do: expand a bundle string into its parts."""
    if secret.startswith(BUNDLE_PREFIX):
        return secret[len(BUNDLE_PREFIX):].split(BUNDLE_SEP)
    return []


def install_fake_supervisor():
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import MaskSecret

    local = _secrets_masker()
    sup = SecretsMasker()
    sup.min_length_to_mask = local.min_length_to_mask
    sup.sensitive_variables_fields = list(local.sensitive_variables_fields)
    sup.hide_sensitive_var_conn_fields = local.hide_sensitive_var_conn_fields
    sup.secret_mask_adapter = local.secret_mask_adapter
    SUP["masker"] = sup

    class FakeComms:
        def send(self, msg):
            if isinstance(msg, MaskSecret):
                t0 = time.perf_counter()
                # round-trip through JSON like the real frame would
                m2 = MaskSecret.model_validate_json(msg.model_dump_json())
                sup.add_mask(m2.value, m2.name)
                SUP["t"] += time.perf_counter() - t0
                SUP["msgs"] += 1
                return None
            raise RuntimeError(f"unexpected supervisor request {type(msg).__name__}")

    task_runner.SUPERVISOR_COMMS = FakeComms()


def hook_loop():
    conns = []
    for cid in IDS:
        conns.append(BaseHook.get_connection(cid))
    return conns


# --------------------------------------------------------------------------------------------------
def main():
    masker = _secrets_masker()
    base_patterns = len(masker.patterns)
    t0 = time.perf_counter()
    conns = None

    if MODE == "hook":
        conns = hook_loop()
    elif MODE == "hook_sup":
        install_fake_supervisor()
        t0 = time.perf_counter()
        conns = hook_loop()
    elif MODE == "mask_list":
        from airflow.sdk.log import mask_secret

        mask_secret(env_secrets(IDS))
        conns = hook_loop()
    elif MODE == "prereg":
        bulk_mask(env_secrets(IDS))
        conns = hook_loop()
    elif MODE == "prereg_sup":
        install_fake_supervisor()
        t0 = time.perf_counter()
        bulk_mask(env_secrets(IDS))
        conns = hook_loop()
    elif MODE == "adapter_sup":
        masker.secret_mask_adapter = bundle_adapter  # would come from [logging] secret_mask_adapter
        install_fake_supervisor()
        t0 = time.perf_counter()
        from airflow.sdk.log import mask_secret

        secrets_ = env_secrets(IDS)
        bulk_mask(secrets_)  # task side: one compile
        # supervisor side: ONE MaskSecret; add_mask(str) adds secret + all adaptations, one compile
        mask_secret(BUNDLE_PREFIX + BUNDLE_SEP.join(secrets_))
        conns = hook_loop()
    elif MODE == "adapter_pub_sup":
        # public API only + [logging] secret_mask_adapter config (simulated on both maskers)
        masker.secret_mask_adapter = bundle_adapter
        install_fake_supervisor()
        t0 = time.perf_counter()
        from airflow.sdk.log import mask_secret

        mask_secret(BUNDLE_PREFIX + BUNDLE_SEP.join(env_secrets(IDS)))  # 1 compile here, 1 in supervisor
        conns = hook_loop()
    elif MODE == "direct":
        from airflow.sdk.definitions.connection import Connection
        from airflow.secrets.environment_variables import EnvironmentVariablesBackend

        b = EnvironmentVariablesBackend()
        b._set_connection_class(Connection)
        conns = [b.get_connection(cid) for cid in IDS]
        sec = []
        for c in conns:
            sec += [c.password] if c.password else []
            sec += [c.extra] if c.extra else []
        sec += [s for s in env_secrets(IDS) if s not in sec]
        bulk_mask(sec)
    else:
        raise SystemExit(f"unknown mode {MODE}")

    elapsed = time.perf_counter() - t0

    # ---- verification: every password (and extra token) is redacted by the masker
    assert all(c.password == PASSWORDS[c.conn_id] for c in conns)
    leaked = [cid for cid, pw in PASSWORDS.items() if redact(f"pw={pw};") != "pw=***;"]
    leaked += [cid for cid, tk in EXTRA_TOKENS.items() if redact(f"t={tk};") != "t=***;"]
    sup_leaked = None
    if SUP["masker"] is not None:
        s = SUP["masker"]
        sup_leaked = [cid for cid, pw in PASSWORDS.items() if s.redact(f"pw={pw};") != "pw=***;"]
        sup_leaked += [cid for cid, tk in EXTRA_TOKENS.items() if s.redact(f"t={tk};") != "t=***;"]

    res = {
        "N": N,
        "mode": MODE,
        "extra": WITH_EXTRA,
        "elapsed_s": round(elapsed, 3),
        "task_side_s": round(elapsed - SUP["t"], 3),
        "supervisor_side_s": round(SUP["t"], 3) if SUP["masker"] is not None else None,
        "supervisor_msgs": SUP["msgs"] if SUP["masker"] is not None else None,
        "masker_compiles": COMPILES["n"],
        "compile_time_s": round(COMPILES["t"], 3),
        "patterns": len(masker.patterns),
        "base_patterns": base_patterns,
        "task_masker_leaks": len(leaked),
        "supervisor_masker_leaks": len(sup_leaked) if sup_leaked is not None else None,
        "import_s": round(t_import, 2),
        "min_len": masker.min_length_to_mask,
        "sensitive_fields": len(masker.sensitive_variables_fields),
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()

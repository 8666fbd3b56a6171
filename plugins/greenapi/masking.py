"""Many connections' secrets registered with Airflow's secrets masker in one update.

Airflow masks each connection's password and extra as the connection is loaded. Each new secret
recompiles one regular expression of every secret known so far, in the task process and again in
its supervisor, so a task that loads N connections pays O(N^2) (3.7 s for 250 connections, 2 min
for 1,000; docs/benchmarks.md). A health-check shard loads hundreds.

The masker has one documented way to add several secrets at once: ``[logging]
secret_mask_adapter``, a function that turns one secret into more. A deployment that sets it to
:func:`expand_bundle` lets :func:`load_connections` read a shard's connections from the secrets
backends, then send every secret as one bundle: one compile in each process. Where the setting is
anything else, :func:`load_connections` returns None and each hook loads its own connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Connection

#: The value to give ``[logging] secret_mask_adapter`` (``AIRFLOW__LOGGING__SECRET_MASK_ADAPTER``).
ADAPTER = "greenapi.masking.expand_bundle"
_MARK = "green-api-secrets-bundle\x00"
_SEP = "\x00"


def expand_bundle(secret: str) -> list[str]:
    """The secrets in a bundle made by :func:`bundle`; nothing more for any other secret."""
    if secret.startswith(_MARK):
        return secret[len(_MARK) :].split(_SEP)
    return []


def bundle(secrets: Iterable[str]) -> tuple[str | None, list[str]]:
    """One string carrying ``secrets`` (None if none can be carried), and the secrets it cannot
    carry (they hold the separator)."""
    carried, apart = [], []
    for secret in secrets:
        (apart if _SEP in secret else carried).append(secret)
    return (_MARK + _SEP.join(carried) if carried else None), apart


def bundles_expanded() -> bool:
    """Whether this deployment's ``[logging] secret_mask_adapter`` is :func:`expand_bundle`."""
    from airflow.sdk.configuration import conf

    return conf.get("logging", "secret_mask_adapter", fallback="").strip() == ADAPTER


def load_connections(conn_ids: Iterable[str]) -> dict[str, Connection | None] | None:
    """Each connection id's connection (None where no backend has it), its secrets already masked.

    Reads through the same secrets backends, in the same order, as ``Connection.get``, but
    registers the password and extra of every connection with the masker in one message, before
    any of them is used. Returns None where bundles are not expanded: registering a bundle there
    would mask the bundle but not the secrets inside it.
    """
    if not bundles_expanded():
        return None
    from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied
    from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

    backends = ensure_secrets_backend_loaded()
    found: dict[str, Connection | None] = {}
    for conn_id in conn_ids:
        found[conn_id] = None
        for backend in backends:
            try:
                conn = backend.get_connection(conn_id=conn_id)
            except AirflowSecretsBackendAccessDenied:
                raise
            except Exception:  # as Connection.get does: an unreachable backend hands over to the next
                continue
            if conn:
                found[conn_id] = conn
                break
    mask_all(s for conn in found.values() if conn for s in (conn.password, conn.extra) if s)
    return found


def mask_all(secrets: Iterable[str]) -> None:
    """Register ``secrets`` with the masker: as one bundle where bundles are expanded, else one by one."""
    from airflow.sdk.log import mask_secret

    if bundles_expanded():
        carried, apart = bundle(secrets)
        for secret in ([carried] if carried else []) + apart:
            mask_secret(secret)
        return
    for secret in secrets:
        mask_secret(secret)

"""Operators of the Green API provider: send a WhatsApp message, reboot an instance, check instances."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowException

from greenapi.domain.broken import SETTINGS_DRIFT, SETTINGS_MATCH, Drift, Read, Reading, parse_reads
from greenapi.domain.config import ConfigError
from greenapi.domain.outages import api_host, hosts_checked
from greenapi.domain.records import CheckBatch, InstanceCheck
from greenapi.domain.rules import HEALTHY_STATE
from greenapi.triggers.green_api import (
    GreenApiStateTrigger,
    check_interval,
    check_states,
    run_here,
    state_seen,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

    from greenapi.hooks.green_api import GreenApiHook

def why(error: str | None, http_status: int | None, conn_id: str) -> str:
    """One line saying why a call failed: the API's reason, then what it means, never the token."""
    from greenapi.domain.rules import refusal_meaning

    meaning = refusal_meaning(http_status)
    return f"{error} ({meaning}; connection {conn_id!r})" if meaning else f"{error} (connection {conn_id!r})"


def _hook(conn_id: str) -> GreenApiHook:
    from greenapi.hooks.green_api import UnusableConnection, open_hook

    try:
        return open_hook(conn_id)
    except UnusableConnection as exc:
        raise AirflowException(str(exc)) from None


class GreenApiSendMessageOperator(BaseOperator):
    """Sends a WhatsApp text through a Green API instance (``sendMessage``).

    Returns the message's ``idMessage``. A send that may pass (429, 5xx, timeout) is tried again
    with exponential backoff, up to ``attempts`` times; a refusal (401, 403, 466, 400) fails at once,
    with the API's reason. A 200 means queued by the instance, not yet delivered.

    :param chat_id: ``<country code and number>@c.us`` or a group id ``...@g.us`` (templated).
    :param message: the text, up to 20,000 characters (templated).
    :param green_api_conn_id: the sending instance's connection.
    :param attempts: tries for a send that may pass (default 3).
    :param backoff_seconds: wait before the second try, doubled for each next one (default 2).
    """

    template_fields: Sequence[str] = ("chat_id", "message", "green_api_conn_id")
    template_fields_renderers = {"message": "md"}
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        chat_id: str,
        message: str,
        green_api_conn_id: str = "green_api_default",
        attempts: int = 3,
        backoff_seconds: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be a whole number of at least 1, got {attempts!r}")
        self.chat_id = chat_id
        self.message = message
        self.green_api_conn_id = green_api_conn_id
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds

    def execute(self, context: Context) -> str:
        """Send the message, trying again what may pass; returns its ``idMessage``."""
        from greenapi.notifications.delivery import send_whatsapp

        if not isinstance(self.message, str) or not self.message.strip():
            raise AirflowException(f"message is empty: nothing to send to {self.chat_id!r}")
        hook = _hook(self.green_api_conn_id)
        tries = send_whatsapp([hook], self.chat_id, self.message, retries=self.attempts, backoff_seconds=self.backoff_seconds)
        last = tries[-1]
        if not last.ok:
            raise AirflowException(f"sendMessage to {self.chat_id} failed after {len(tries)} attempt(s): "
                                   f"{why(last.error, last.http_status, self.green_api_conn_id)}")  # fmt: skip
        self.log.info("Message %s queued for %s by instance %s", last.id_message, self.chat_id, hook.config.instance_id)
        return str(last.id_message)


class GreenApiRebootOperator(BaseOperator):
    """Reboots an instance (``reboot``), then waits until it reports ``wait_for_state``.

    Fails with the API's reason when the reboot is refused (``isReboot: false``, an HTTP error),
    and names the last state seen when ``wait_for_state`` does not come within ``timeout``.
    Returns ``{"instance_id", "state"}`` (``state`` None when not waited for).

    :param green_api_conn_id: the instance's connection.
    :param wait_for_state: the state to wait for after the reboot (default ``authorized``); None to
        return as soon as the reboot is accepted.
    :param timeout: seconds to wait for that state (default 300).
    :param poke_interval: seconds between looks, at least 1 (default 15). The first look comes one
        interval after the reboot: the instance may still answer from before its restart.
    :param deferrable: wait in the triggerer (:class:`GreenApiStateTrigger`), holding no worker slot;
        by default ``[operators] default_deferrable``. Otherwise the same trigger runs in the task.
    """

    template_fields: Sequence[str] = ("green_api_conn_id",)
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        green_api_conn_id: str = "green_api_default",
        wait_for_state: str | None = "authorized",
        timeout: float = 300,
        poke_interval: float = 15,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if wait_for_state is not None:
            check_states([wait_for_state])
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.green_api_conn_id = green_api_conn_id
        self.wait_for_state = wait_for_state
        self.timeout = float(timeout)
        self.poke_interval = check_interval(poke_interval)
        self.deferrable = deferrable

    def execute(self, context: Context) -> dict[str, Any]:
        """Reboot, then wait (in the triggerer when deferrable, else here) for ``wait_for_state``."""
        hook = _hook(self.green_api_conn_id)
        instance_id = hook.config.instance_id
        result = hook.reboot()
        if not result.ok:
            raise AirflowException(f"Reboot of instance {instance_id} failed: {why(result.error, result.http_status, self.green_api_conn_id)}")
        if result.data.get("isReboot") is not True:
            raise AirflowException(
                f"Reboot of instance {instance_id} refused by the API (isReboot: {result.data.get('isReboot')!r}; "
                f"connection {self.green_api_conn_id!r})"
            )
        self.log.info("Reboot of instance %s accepted", instance_id)
        if self.wait_for_state is None:
            return {"instance_id": instance_id, "state": None}
        now = datetime.now(UTC)
        trigger = GreenApiStateTrigger(
            green_api_conn_id=self.green_api_conn_id,
            target_states=[self.wait_for_state],
            poke_interval=self.poke_interval,
            end_at=(now + timedelta(seconds=self.timeout)).isoformat(),
            first_look_at=(now + timedelta(seconds=self.poke_interval)).isoformat(),
        )
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout + 60))
        return self.execute_complete(context, run_here(trigger))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """The wait's end (from the triggerer, or from the trigger run in the task): the state
        came, or the error names the last state seen."""
        look = InstanceCheck.from_dict(event["check"]) if event.get("check") else None
        if event.get("status") == "success" and look is not None:
            self.log.info("%s", event.get("message"))
            return {"instance_id": look.instance_id, "state": self.wait_for_state}
        if event.get("status") == "timeout" and look is not None:
            raise AirflowException(
                f"Instance {look.instance_id} rebooted but did not reach {self.wait_for_state} within "
                f"{self.timeout:g} s; last seen: {state_seen(look) or look.result.error}"
            )
        raise AirflowException(f"Reboot done, but {event.get('message')}")


def read_more(hook: GreenApiHook, wanted: frozenset[Read]) -> Reading:
    """What else an authorized instance shows (:mod:`greenapi.domain.broken`): its socket
    (getStatusInstance), its outgoing queue's length (showMessagesQueue) and its settings compared
    with the connection's ``expected_settings`` (getSettings, only when that extra is set). A read
    that fails is kept as an error and gives no sign."""
    socket = queue = settings = None
    drift: tuple[Drift, ...] = ()
    errors: dict[str, str] = {}
    if Read.SOCKET in wanted:
        result = hook.get_status_instance()
        socket = result.data.get("statusInstance") if result.ok else None
        if socket not in ("online", "offline"):
            errors[Read.SOCKET.value] = result.error or f"getStatusInstance answered statusInstance {socket!r}"
            socket = None
    if Read.QUEUE in wanted:
        result = hook.show_messages_queue()
        messages = result.data.get("messages") if result.ok else None
        if isinstance(messages, list):
            queue = len(messages)  # only the count leaves this function: no message body
        else:
            errors[Read.QUEUE.value] = result.error or "showMessagesQueue did not answer a list"
    if Read.SETTINGS in wanted and hook.config.expected_settings:
        result = hook.compare_settings()
        if result.ok:
            drift = tuple(Drift.from_dict(d) for d in result.data.get("drift", []))
            settings = SETTINGS_DRIFT if drift else SETTINGS_MATCH
        else:
            errors[Read.SETTINGS.value] = result.error or "getSettings failed"
    return Reading(socket, queue, settings, drift, errors)


def list_partners(keys: Sequence[str]) -> tuple[list[str], list[str]]:
    """The keys whose partner account could be listed (each account listed once here, its
    instances' tokens masked in one update), and one problem per account that could not be, naming
    how many of its instances go unchecked. Connection ids pass through."""
    from greenapi.domain.partner import split_key
    from greenapi.hooks.green_api import LISTINGS, GreenApiPartnerHook, PartnerApiError

    by_account: dict[str, list[str]] = {}
    for key in keys:
        if (partner := split_key(key)) is not None:
            by_account.setdefault(partner[0], []).append(partner[1])
    failed: dict[str, str] = {}
    for conn_id, ids in by_account.items():
        try:
            account = GreenApiPartnerHook(conn_id).account()
        except (ConfigError, PartnerApiError) as exc:
            failed[conn_id] = f"{exc}; {len(ids)} instance(s) of this account not checked"
            continue
        wanted = set(ids)
        LISTINGS.mask(i.token for i in account.instances if i.instance_id in wanted and not i.deleted)
    usable = [k for k in keys if (p := split_key(k)) is None or p[0] not in failed]
    return usable, list(failed.values())


def check_instances(
    conn_ids: Sequence[str], max_concurrency: int, listed_in: str | None = None,
    reads: Callable[[str], frozenset[Read]] | None = None, dashboard_url: str | None = None,
    expiry_warning_days: float = 3,
) -> CheckBatch:  # fmt: skip
    """``getStateInstance`` of each instance, concurrently (at most ``max_concurrency`` at once).

    ``dashboard_url``: the link each check carries (for alerts), unless its connection's extra
    ``dashboard_url`` names another.

    ``reads``: what else to read of an authorized instance, by instance id (see :func:`read_more`);
    asked, and read, once every state call has gone out.
    A connection that cannot be used becomes a problem naming it (and ``listed_in``, where the
    user listed it); the others are still checked. Where the deployment expands secret bundles
    (:mod:`greenapi.masking`), the connections are read first with one masker update; otherwise
    each worker loads its own connection, so that loading overlaps the calls already waiting.

    A partner account's instance (``<partner connection id>/<idInstance>``) is called with the
    token its account lists (one ``getInstances`` per account here); each of its checks carries
    the account's word on its paid period (``reading.expiry``: expiring within
    ``expiry_warning_days``, or expired). An account that cannot be listed is one problem.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    from greenapi.domain.partner import expiry_of, split_key
    from greenapi.hooks.green_api import UnusableConnection, open_hook
    from greenapi.masking import load_connections

    conn_ids, unlisted = list_partners(conn_ids)
    if not conn_ids:
        return CheckBatch(problems=unlisted)
    loaded = load_connections([c for c in conn_ids if split_key(c) is None])
    # The states first: each worker hands its instance's further reads back to the pool, where
    # they wait until every state call has gone out (CPU spent on reads would delay the last ones,
    # and with them the run's end when an instance hangs), then run while slow instances are awaited.
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_concurrency, len(conn_ids))), thread_name_prefix="greenapi")
    started, all_started, counting = [0], threading.Event(), threading.Lock()

    def state_call_starts() -> None:
        with counting:
            started[0] += 1
            if started[0] == len(conn_ids):
                all_started.set()

    def after_the_states(hook: GreenApiHook) -> Reading | None:
        all_started.wait()
        wanted = reads(hook.config.instance_id) if reads else frozenset()
        return read_more(hook, wanted) if wanted else None

    def check(conn_id: str) -> tuple[InstanceCheck | str, Future[Reading | None] | None]:
        try:
            hook = open_hook(conn_id, loaded)
        except UnusableConnection as exc:
            state_call_starts()
            return (f"{exc} (listed in {listed_in})" if listed_in else str(exc)), None
        checked_at = datetime.now(UTC).isoformat()
        state_call_starts()
        result = hook.get_state_instance()
        more = None
        if reads and result.ok and result.data.get("stateInstance") == HEALTHY_STATE:
            more = pool.submit(after_the_states, hook)
        cfg = hook.config
        link = cfg.dashboard_url or dashboard_url
        expiry = None
        if split_key(conn_id) is not None:
            expiry = expiry_of(cfg.expires_at, cfg.expired, datetime.fromisoformat(checked_at), expiry_warning_days)
        check = InstanceCheck(conn_id, cfg.instance_id, checked_at, result, link, api_host=api_host(cfg.api_url),
                              name=cfg.name, reading=Reading(expiry=expiry) if expiry else None)  # fmt: skip
        return check, more

    def with_reads(check: InstanceCheck, more: Future[Reading | None]) -> InstanceCheck:
        read = more.result()
        if read is None:
            return check
        return replace(check, reading=replace(read, expiry=check.reading.expiry) if check.reading else read)

    with pool:
        staged = list(pool.map(check, conn_ids))
        done = [with_reads(c, more) if more and isinstance(c, InstanceCheck) else c for c, more in staged]
    checks = [c for c in done if isinstance(c, InstanceCheck)]
    return CheckBatch(checks, unlisted + [p for p in done if isinstance(p, str)], hosts=hosts_checked(checks))


class GreenApiHealthCheckOperator(BaseOperator):
    """Checks instances with ``getStateInstance``, concurrently, and returns typed results.

    Returns a ``CheckBatch`` as JSON: ``{"checks": [{"conn_id", "instance_id", "checked_at",
    "dashboard_url", "result": {"kind", "http_status", "data", "error", ...}}], "problems": [str]}``.
    Logs one line per instance with a problem, then a summary. Does not fail for an unhealthy
    instance or an unusable connection (they are in the result): what to do is the next task's call;
    ``fail_on_problem=True`` fails the task when any instance is not healthy or not checked.

    With ``also_read``, each authorized instance is also read for what breaks a bot while its
    state says ``authorized``, and each check carries a ``"reading"``: ``"socket"``
    (getStatusInstance: ``online``/``offline``), ``"queue"`` (the outgoing queue's length, from
    showMessagesQueue) and ``"settings"`` (getSettings compared with the connection's extra
    ``expected_settings``: ``match``/``drift``, with each differing key; secrets never shown).

    :param green_api_conn_ids: connection ids (templated: a mapped task can take its shard).
    :param max_concurrency: calls in flight at once (default 50).
    :param listed_in: where the ids come from, named in the problem of an unusable one.
    :param fail_on_problem: fail the task when any instance is not healthy or not checked (default False).
    :param also_read: any of ``"socket"``, ``"queue"``, ``"settings"`` (default none).
    :param dashboard_url: the link each check carries (``"dashboard_url"``, for alerts), for the
        instances whose connection has no extra ``dashboard_url`` (default none).
    :param expiry_warning_days: a partner account's instance whose paid period ends within this
        many days is read as expiring (``reading.expiry``; default 3).

    Besides connection ids, ``green_api_conn_ids`` takes partner accounts' instances as
    ``"<partner connection id>/<idInstance>"`` (see :class:`~greenapi.hooks.green_api.GreenApiPartnerHook`),
    and ``{"partner": "<partner connection id>", "type": "whatsapp"}`` for every live instance of an account.
    """

    template_fields: Sequence[str] = ("green_api_conn_ids",)
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        green_api_conn_ids: Sequence[str] | str,
        max_concurrency: int = 50,
        listed_in: str | None = None,
        fail_on_problem: bool = False,
        also_read: Sequence[str] = (),
        dashboard_url: str | None = None,
        expiry_warning_days: float = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a whole number of at least 1, got {max_concurrency!r}")
        self.green_api_conn_ids = green_api_conn_ids
        self.max_concurrency = max_concurrency
        self.listed_in = listed_in
        self.fail_on_problem = fail_on_problem
        self.also_read = parse_reads(also_read)
        self.dashboard_url = dashboard_url
        self.expiry_warning_days = expiry_warning_days

    def reads_for(self, conn_ids: Sequence[str]) -> Callable[[str], frozenset[Read]]:
        """What to read beyond the state, by instance id (here: ``also_read``, every check)."""
        return lambda _instance_id: self.also_read

    @staticmethod
    def expand_partners(entries: Sequence[str | dict[str, Any]]) -> tuple[list[str], list[str]]:
        """Each partner entry as the keys of its account's live instances (an instance that also
        has a connection of its own in ``entries`` is checked once, under it); a problem for each
        account that cannot be listed."""
        from greenapi.domain.config import parse_instance_list
        from greenapi.hooks.green_api import expand_instances

        if not any(isinstance(e, dict) for e in entries):
            return list(entries), []  # type: ignore[arg-type]
        try:
            wanted = parse_instance_list(list(entries), listed_in="green_api_conn_ids")
        except ConfigError as exc:
            raise AirflowException(str(exc)) from None
        expanded = expand_instances(wanted)
        return expanded.keys, expanded.problems

    def execute(self, context: Context) -> dict[str, Any]:
        """Check every instance; log a line per problem and the summary; return the ``CheckBatch``."""
        from greenapi.domain.rules import Status
        from greenapi.domain.summary import batch_lines, checked

        conn_ids = self.green_api_conn_ids
        if isinstance(conn_ids, str):  # one id, or a template that rendered a JSON list to text
            conn_ids = json.loads(conn_ids) if conn_ids.lstrip().startswith("[") else [conn_ids]
        if not isinstance(conn_ids, list | tuple) or not all(isinstance(c, str | dict) and c for c in conn_ids):
            raise AirflowException(f"green_api_conn_ids must be a list of connection ids, got {conn_ids!r}")
        conn_ids, unlisted = self.expand_partners(conn_ids)
        batch = check_instances(conn_ids, self.max_concurrency, self.listed_in, self.reads_for(conn_ids),
                                self.dashboard_url, self.expiry_warning_days)  # fmt: skip
        batch.problems[:0] = unlisted
        items = checked(batch)
        for level, line in batch_lines(items, batch.problems):
            self.log.log(level, "%s", line)
        unhealthy = [i.conn_id for i in items if i.verdict.status is not Status.HEALTHY]
        if self.fail_on_problem and (unhealthy or batch.problems):
            raise AirflowException(f"{len(unhealthy)} instance(s) not healthy ({', '.join(unhealthy) or 'none'}), "
                                   f"{len(batch.problems)} not checked")  # fmt: skip
        return batch.to_dict()

"""Glue shared by the DAGs: hooks, alert delivery, health-log rows and the run's verdict.

Functions take and return plain JSON-able data (XComs). XComs hold instance ids, states and
redacted errors, never a token.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk.exceptions import AirflowNotFoundException

from greenapi.domain.config import ConfigError, Settings, parse_settings
from greenapi.domain.findings import Finding
from greenapi.domain.messages import render_alert
from greenapi.domain.rules import Status, trigger_type_for
from greenapi.hooks.green_api import GreenApiHook

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from greenapi.store import IncidentStore


log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class UnusableConnection(Exception):
    """A connection id that cannot be used; the message says why and what to do."""

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def open_hook(conn_id: str) -> GreenApiHook:
    """The hook of a connection, validated now rather than in the middle of a call."""
    hook = GreenApiHook(conn_id)
    try:
        hook.config  # noqa: B018
    except AirflowNotFoundException:
        raise UnusableConnection(
            f"unknown connection id {conn_id!r}: create it (Admin > Connections, type Green API)", missing=True
        ) from None
    except ConfigError as exc:
        raise UnusableConnection(str(exc), missing=False) from None
    return hook


def dashboard_url(hook: GreenApiHook) -> str:
    """The link put in alerts about the hook's instance: its connection's extra ``dashboard_url``,
    else the dashboard in the Airflow UI."""
    from greenapi.dashboard import dashboard_link

    return hook.config.dashboard_url or dashboard_link()


def open_hooks(conn_ids: Iterable[str], listed_in: str) -> tuple[list[GreenApiHook], list[str]]:
    """Hooks for the usable connections, and one problem per unusable one."""
    hooks, problems = [], []
    for conn_id in conn_ids:
        try:
            hooks.append(open_hook(conn_id))
        except UnusableConnection as exc:
            problems.append(f"{exc} (listed in {listed_in})")
    return hooks, problems


def in_parallel(settings: Settings, items: list[T], work: Callable[[T], R]) -> list[R]:
    """``work`` over ``items`` concurrently, at most ``max_concurrency`` at once, order kept."""
    if not items:
        return []
    workers = max(1, min(settings.max_concurrency, len(items)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="greenapi") as pool:
        return list(pool.map(work, items))


def send_alerts(findings: list[Finding], settings_raw: Any, store: IncidentStore, origin: str) -> dict[str, Any]:
    """One-shot alerts (the reboot DAGs): each finding's alert to every active contact.

    Returns ``{"deliveries", "problems", "alerts", "undelivered"}``; every attempt is recorded.
    """
    from greenapi.tasks.alerting import AlertRun, senders_for

    settings = parse_settings(settings_raw)
    context_ids = _run_ids()
    run = AlertRun(store, settings, datetime.now(UTC), *context_ids)
    alerts = 0
    for finding in findings:
        if finding.alert is None:
            continue
        alerts += 1
        text = render_alert(finding.alert_facts(origin), settings.message_timezone, settings.language)
        senders = senders_for(finding.conn_id, finding.status is Status.HEALTHY, settings)
        accepted = run.deliver(text, None, senders, kind="alert", incident_id=None,
                               instance_id=finding.instance_id, conn_id=finding.conn_id)  # fmt: skip
        if not accepted:
            run.undelivered += 1
            run.problems.append(f"alert {finding.alert.value} for instance {finding.instance_id} reached no contact")
    store.record_deliveries(run.delivery_rows())
    return {"deliveries": run.deliveries, "problems": run.problems, "alerts": alerts, "undelivered": run.undelivered}


def log_deliveries(outcome: dict[str, Any]) -> None:
    """One log line per message attempt (who, what, through which sender), then a summary."""
    for d in outcome.get("deliveries", []):
        what = f"{d['message_kind']} about instance {d['instance_id']}" + (
            f" (incident {d['incident_id']})" if d.get("incident_id") else "")  # fmt: skip
        if d["ok"]:
            log.info("%s sent to %s via %s", what, d["recipient"], d["sender"])
        else:
            log.warning("%s not sent to %s via %s: %s", what, d["recipient"], d["sender"], d["error"])
    for problem in outcome.get("problems", []):
        log.error(problem)
    sent = sum(1 for d in outcome.get("deliveries", []) if d["ok"])
    log.info("%d message(s) sent, %d notice(s) reached nobody", sent, outcome.get("undelivered", 0))


def _run_ids() -> tuple[str, str]:
    try:
        from airflow.sdk import get_current_context

        dag_run = get_current_context()["dag_run"]
        return dag_run.dag_id, dag_run.run_id
    except Exception:  # noqa: BLE001 - outside a task (tests of the glue)
        return "", ""


def log_rows(
    findings: list[Finding],
    alerting: dict[str, Any] | None,
    *,
    dag_id: str,
    run_id: str,
    trigger_type: str,
) -> list[dict[str, Any]]:
    """Exactly one health-log row per finding, saying what really happened."""
    deliveries = (alerting or {}).get("deliveries", [])
    incident_ids = (alerting or {}).get("incident_ids", {})
    windows = (alerting or {}).get("in_window", {})
    rows = []
    for f in findings:
        sent = sorted(d["at"] for d in deliveries if d["instance_id"] == f.instance_id and d["ok"])
        rows.append(
            {
                "checked_at": f.checked_at,
                "status": f.status.value,
                "state_instance": f.state,
                "error_message": f.error,
                "reboot_triggered": f.reboot_triggered,
                "reboot_success": f.reboot_success,
                "response_time_ms": f.response_time_ms,
                "support_notified": bool(sent),
                "support_notification_sent_at": sent[0] if sent else None,
                "trigger_type": trigger_type,
                "instance_id": f.instance_id,
                "connection_id": f.conn_id,
                "alert_type": f.alert.value if f.alert else None,
                "dag_id": dag_id,
                "run_id": run_id,
                "incident_id": incident_ids.get(f.instance_id),
                "in_maintenance_window": bool(windows.get(f.instance_id, False)),
            }
        )
    return rows


def run_trigger_type(run_type: Any) -> str:
    """``manual`` for a run triggered by hand, else ``automatic``."""
    return trigger_type_for(str(getattr(run_type, "value", run_type)))


def summarize(
    findings: list[Finding] | None,
    problems: Iterable[str],
    alerting: dict[str, Any] | None,
    logged: int | None,
) -> dict[str, Any]:
    """The run's outcome; ``problems`` non-empty means the run must fail."""
    found: list[str] = list(problems)
    if findings is None:
        found.append("the first task produced no result: see its log")
    if alerting is None:
        found.append("send_alerts did not complete: see that task's log")
    else:
        found.extend(alerting.get("problems", []))
    if logged is None:
        found.append("log_results did not complete: the checks may be missing from green_api_health_logs")
    statuses: dict[str, int] = {}
    for finding in findings or []:
        statuses[finding.status.value] = statuses.get(finding.status.value, 0) + 1
    return {"instances": sum(statuses.values()), "statuses": statuses, "logged": logged, "problems": found}


# ---- task bodies shared by the DAGs (they read the run's context and Variables)


def settings_raw() -> Any:
    from airflow.sdk import Variable

    from greenapi.domain.config import SETTINGS_VARIABLE

    return Variable.get(SETTINGS_VARIABLE, default=None)


def _alerting(ti: Any, alert_task: str) -> dict[str, Any] | None:
    return ti.xcom_pull(task_ids=alert_task) or ti.xcom_pull(task_ids=alert_task, key="failed_outcome")


def alert_step(findings: list[Finding], origin: str) -> dict[str, Any]:
    """Task body: alert, keep the outcome even when failing (the log task needs the deliveries)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    from greenapi.store import IncidentStore

    ti = get_current_context()["ti"]
    outcome = send_alerts(findings, settings_raw(), IncidentStore(), origin)
    log_deliveries(outcome)
    if outcome["undelivered"]:
        ti.xcom_push(key="failed_outcome", value=outcome)
        raise AirflowFailException("; ".join(outcome["problems"]))
    return outcome


def log_step(findings: list[Finding], alert_task: str, trigger_type: str | None = None) -> int:
    """Task body: one row per finding; ``trigger_type`` None means manual or automatic by run type."""
    from airflow.sdk import get_current_context

    from greenapi.store import HealthStore

    context = get_current_context()
    ti, dag_run = context["ti"], context["dag_run"]
    rows = log_rows(
        findings,
        _alerting(ti, alert_task),
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        trigger_type=trigger_type or run_trigger_type(dag_run.run_type),
    )
    inserted = HealthStore().insert_health_logs(rows)
    print(f"{len(rows)} row(s) to log, {inserted} new in green_api_health_logs")
    return len(rows)


def report_step(findings: list[Finding] | None, problems: Iterable[str], alert_task: str) -> dict[str, Any]:
    """Task body: the run's summary; fails the run, naming every problem."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    ti = get_current_context()["ti"]
    summary = summarize(findings, problems, _alerting(ti, alert_task), ti.xcom_pull(task_ids="log_results"))
    if summary["problems"]:
        raise AirflowFailException("Run failed: " + "; ".join(summary["problems"]))
    return summary

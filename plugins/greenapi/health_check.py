"""Glue of the health-check DAG: calls the hook and the store, hands results to the domain.

Every function takes and returns plain JSON-able data (the XComs between tasks). XComs hold
instance ids, states and redacted errors, never a token.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowNotFoundException

from greenapi.domain.config import ALERTS_CONN_ID, ConfigError, Settings, parse_instances, parse_settings
from greenapi.domain.messages import AlertFacts, render_alert
from greenapi.domain.results import ApiResult
from greenapi.domain.rules import Verdict, after_reboot, classify_check, trigger_type_for
from greenapi.hooks.green_api import GreenApiHook
from greenapi.store import Contact, HealthStore

REBOOT_TASK = "reboot_instances"
ALERT_TASK = "send_alerts"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _pool(settings: Settings, size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, min(settings.max_concurrency, size)), thread_name_prefix="greenapi")


def _open_hook(conn_id: str) -> tuple[GreenApiHook | None, str | None]:
    """The hook of a connection, or the reason it cannot be used (named for the user)."""
    hook = GreenApiHook(conn_id)
    try:
        hook.config  # noqa: B018 - validates the connection now, not in the middle of a check
    except AirflowNotFoundException:
        return None, f"unknown connection id {conn_id!r}: create it (Admin > Connections, type Green API)"
    except ConfigError as exc:
        return None, str(exc)
    return hook, None


def check_instances(instances_raw: Any, settings_raw: Any) -> dict[str, Any]:
    """Check every configured instance concurrently (bounded by ``max_concurrency``).

    Raises ConfigError for an invalid Variable (nothing can be checked). A connection that cannot
    be used is reported in ``problems`` and the other instances are still checked.
    """
    conn_ids = parse_instances(instances_raw)
    settings = parse_settings(settings_raw)
    hooks: list[GreenApiHook] = []
    problems: list[str] = []
    for conn_id in conn_ids:
        hook, problem = _open_hook(conn_id)
        if hook is None:
            problems.append(f"{problem} (listed in Variable green_api_instances)")
        else:
            hooks.append(hook)

    def check(hook: GreenApiHook) -> dict[str, Any]:
        checked_at = _now()
        result = hook.get_state_instance()
        return {
            "conn_id": hook.green_api_conn_id,
            "instance_id": hook.config.instance_id,
            "dashboard_url": hook.config.dashboard_url,
            "checked_at": checked_at,
            "result": result.to_dict(),
        }

    checks: list[dict[str, Any]] = []
    if hooks:
        with _pool(settings, len(hooks)) as pool:
            checks = list(pool.map(check, hooks))
    return {"checks": checks, "problems": problems}


def verdict_of(check: dict[str, Any], reboot: dict[str, Any] | None = None) -> Verdict:
    """The final verdict of one check, including its automatic reboot when there was one."""
    verdict = classify_check(ApiResult.from_dict(check["result"]))
    if reboot is not None:
        verdict = after_reboot(verdict, ApiResult.from_dict(reboot))
    return verdict


def route(checked: dict[str, Any]) -> list[str]:
    """The branch: reboot first when a check calls for it; the alert step always runs."""
    if any(verdict_of(c).reboot for c in checked["checks"]):
        return [REBOOT_TASK]
    return [ALERT_TASK]


def reboot_instances(checked: dict[str, Any], settings_raw: Any) -> dict[str, dict[str, Any]]:
    """One automatic reboot per instance whose check calls for it; results by connection id."""
    settings = parse_settings(settings_raw)
    targets = [c["conn_id"] for c in checked["checks"] if verdict_of(c).reboot]

    def reboot(conn_id: str) -> tuple[str, dict[str, Any]]:
        return conn_id, GreenApiHook(conn_id).reboot().to_dict()

    if not targets:
        return {}
    with _pool(settings, len(targets)) as pool:
        return dict(pool.map(reboot, targets))


def _alert_text(check: dict[str, Any], verdict: Verdict, settings: Settings) -> str:
    assert verdict.alert is not None
    facts = AlertFacts(
        kind=verdict.alert,
        instance_id=check["instance_id"],
        checked_at=datetime.fromisoformat(check["checked_at"]),
        dashboard_url=check["dashboard_url"],
        state=verdict.state,
        error=verdict.error,
        response_time_ms=check["result"]["response_time_ms"],
        fix=verdict.fix,
    )
    return render_alert(facts, settings.message_timezone)


def _sender(check: dict[str, Any], problems: list[str]) -> GreenApiHook | None:
    hook, problem = _open_hook(ALERTS_CONN_ID)
    if hook is not None:
        return hook
    if problem and not problem.startswith("unknown connection id"):
        problems.append(f"alert sender {problem}; falling back to the monitored instance")
    fallback, problem = _open_hook(check["conn_id"])
    if problem:
        problems.append(problem)
    return fallback


def send_alerts(
    checked: dict[str, Any],
    reboots: dict[str, dict[str, Any]] | None,
    settings_raw: Any,
    store: HealthStore,
) -> dict[str, Any]:
    """Send each alert to every active contact in priority order; record each delivery.

    Returns ``{"deliveries": [...], "problems": [...], "alerts": n}``; a problem means an alert
    that reached nobody, or nobody to alert.
    """
    settings = parse_settings(settings_raw)
    reboots = reboots or {}
    contacts: list[Contact] = store.active_contacts()
    problems: list[str] = []
    deliveries: list[dict[str, Any]] = []
    if not contacts:
        problems.append("no active support contact in system_support_contacts: nobody can be alerted")
    alerts = failed = 0
    for check in checked["checks"]:
        verdict = verdict_of(check, reboots.get(check["conn_id"]))
        if verdict.alert is None:
            continue
        alerts += 1
        if not contacts:
            failed += 1
            continue
        text = _alert_text(check, verdict, settings)
        sender = _sender(check, problems)
        accepted = 0
        for contact in contacts:
            result = sender.send_message(contact.phone_number, text) if sender else None
            ok = bool(result and result.ok and result.data.get("idMessage"))
            accepted += ok
            deliveries.append(
                {
                    "conn_id": check["conn_id"],
                    "instance_id": check["instance_id"],
                    "alert_type": verdict.alert.value,
                    "contact_id": contact.id,
                    "chat_id": contact.phone_number,
                    "sender": sender.green_api_conn_id if sender else None,
                    "ok": ok,
                    "id_message": result.data.get("idMessage") if result and result.ok else None,
                    "error": None if ok else (result.error if result else "no usable sender"),
                    "sent_at": _now(),
                }
            )
        if not accepted:
            failed += 1
            problems.append(
                f"alert {verdict.alert.value} for instance {check['instance_id']} reached no contact"
            )
    return {"deliveries": deliveries, "problems": problems, "alerts": alerts, "undelivered": failed}


def log_rows(
    checked: dict[str, Any] | None,
    reboots: dict[str, dict[str, Any]] | None,
    alerting: dict[str, Any] | None,
    *,
    dag_id: str,
    run_id: str,
    run_type: str | None,
) -> list[dict[str, Any]]:
    """Exactly one health-log row per check made, saying what really happened."""
    reboots = reboots or {}
    deliveries = (alerting or {}).get("deliveries", [])
    rows = []
    for check in (checked or {}).get("checks", []):
        reboot = reboots.get(check["conn_id"])
        verdict = verdict_of(check, reboot)
        sent = sorted(d["sent_at"] for d in deliveries if d["conn_id"] == check["conn_id"] and d["ok"])
        rows.append(
            {
                "checked_at": check["checked_at"],
                "status": verdict.status.value,
                "state_instance": verdict.state,
                "error_message": verdict.error,
                "reboot_triggered": reboot is not None,
                "reboot_success": verdict.reboot_success,
                "response_time_ms": check["result"]["response_time_ms"],
                "support_notified": bool(sent),
                "support_notification_sent_at": sent[0] if sent else None,
                "trigger_type": trigger_type_for(run_type),
                "instance_id": check["instance_id"],
                "connection_id": check["conn_id"],
                "alert_type": verdict.alert.value if verdict.alert else None,
                "dag_id": dag_id,
                "run_id": run_id,
            }
        )
    return rows


def summarize(
    checked: dict[str, Any] | None,
    reboots: dict[str, dict[str, Any]] | None,
    alerting: dict[str, Any] | None,
    logged: int | None,
) -> dict[str, Any]:
    """The run's outcome; ``problems`` non-empty means the run must fail."""
    problems: list[str] = []
    if checked is None:
        problems.append("check_instances produced no result: see that task's log")
    else:
        problems.extend(checked.get("problems", []))
    if alerting is None:
        problems.append("send_alerts did not complete: see that task's log")
    else:
        problems.extend(alerting.get("problems", []))
    if logged is None:
        problems.append("log_results did not complete: the checks may be missing from green_api_health_logs")
    statuses: dict[str, int] = {}
    for check in (checked or {}).get("checks", []):
        status = verdict_of(check, (reboots or {}).get(check["conn_id"])).status.value
        statuses[status] = statuses.get(status, 0) + 1
    return {"checked": sum(statuses.values()), "statuses": statuses, "logged": logged, "problems": problems}

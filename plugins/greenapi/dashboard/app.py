"""The dashboard's FastAPI app, mounted by the plugin on Airflow's API server at ``/green-api``.

Airflow does not authenticate plugin apps: every route here depends on Airflow's own auth
manager (the session cookie of the UI, or a bearer token) and on read access to the health-check
DAG's runs. Anonymous callers get 401, callers without that permission 403, and neither any data;
a browser opening the page without a session is sent to Airflow's login page, and back after it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from greenapi.dashboard import URL_PREFIX, charts, page
from greenapi.dashboard.queries import (
    BUCKETS,
    MARK_BUCKETS,
    MIN_SPANS,
    QUEUE_BUCKET,
    QUEUE_WINDOW,
    WINDOWS,
    BadFilter,
    CheckFilter,
    DashboardStore,
    DatabaseUnavailable,
    FleetFilter,
    shared_store,
    window_of,
)
from greenapi.dashboard.templating import ENV
from greenapi.domain.config import ConfigError, check_timezone, parse_instances, parse_settings
from greenapi.domain.rules import AlertKind
from greenapi.domain.schedule import REBOOT_SCHEDULE_VARIABLE, next_run, parse_reboot_schedule

log = logging.getLogger(__name__)

LINKS = {  # relative to the page, opened in Airflow's own window (target=_top)
    "airflow": "../",
    "check_now": f"../dags/{page.HEALTH_DAG}",
    "force_reboot": f"../dags/{page.REBOOT_DAG}",
    "scheduled_dag": f"../dags/{page.SCHEDULED_DAG}/runs",
    "schedule": "../variables",
}

can_read = Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=page.HEALTH_DAG))
PAGE = "dashboard"  # the route a person opens in a browser
# Airflow's 403 for a session token it did not sign (401 is a missing or expired one).
INVALID_TOKEN = "Invalid JWT token"


def _variable(name: str) -> Any:
    from airflow.sdk import Variable

    return Variable.get(name, default=None)


def _health_db_uri() -> str:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from greenapi.store import DB_CONN_ID

    return str(PostgresHook(postgres_conn_id=DB_CONN_ID).get_uri()).replace("postgresql+psycopg://", "postgresql://", 1)


def store() -> DashboardStore:
    """The dashboard's store of the health database; a 503 naming the connection when it is unreachable."""
    try:
        return shared_store(_health_db_uri)
    except Exception as exc:  # the message names the connection, never its password
        log.warning("green_api dashboard: health database unavailable: %s", type(exc).__name__)
        raise HTTPException(503, "The health database (connection green_api_db) is unreachable") from None


@dataclass(frozen=True)
class DisplayZone:
    """The time zone the page shows times in, why, and the settings it reads with it."""
    zone: ZoneInfo
    source: str  # why times are in this zone, as the page says it
    error: str | None = None  # an invalid green_api_settings, said on the page
    # Read from green_api_settings with the zone: the queue length the page and the queue chart flag.
    queue_threshold: int = page.DEFAULT_QUEUE_THRESHOLD


def display_zone(request: Request) -> DisplayZone:
    """The Airflow UI's time zone when the page's script has reported it, else the messages' zone."""
    try:
        settings = parse_settings(_variable("green_api_settings"))
        settings_zone, threshold, error = settings.message_timezone, settings.queue_alert_threshold, None
    except ConfigError as exc:
        settings_zone, threshold, error = "UTC", page.DEFAULT_QUEUE_THRESHOLD, str(exc)
    try:
        ui_zone = check_timezone(page.ZONE_COOKIE, unquote(request.cookies.get(page.ZONE_COOKIE, "")))
        return DisplayZone(ZoneInfo(ui_zone), "the time zone of your Airflow UI", error, threshold)
    except ConfigError:
        source = "message_timezone in Variable green_api_settings" if error is None else "green_api_settings is invalid"
        return DisplayZone(ZoneInfo(settings_zone), source, error, threshold)


def _paused(dag_id: str) -> bool | None:
    from airflow.models.dag import DagModel

    model = DagModel.get_dagmodel(dag_id)
    return None if model is None else bool(model.is_paused)


def schedule_info(db: DashboardStore, now: datetime) -> dict[str, Any]:
    """The daily reboot's schedule as the page shows it: time, zone, paused or not, the last and next runs."""
    try:
        schedule = parse_reboot_schedule(_variable(REBOOT_SCHEDULE_VARIABLE))
    except ConfigError as exc:
        return {"error": str(exc)}
    zone = ZoneInfo(schedule.timezone)
    info: dict[str, Any] = {"time": schedule.time, "timezone": schedule.timezone, "enabled": schedule.enabled,
                            "paused": _paused(page.SCHEDULED_DAG)}
    if schedule.enabled:
        upcoming = next_run(now, schedule.at, zone)
        info |= {"next_run_local": upcoming.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
                 "next_run_utc": upcoming.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                 "next_run": upcoming.astimezone(UTC).isoformat()}
    last = db.last_scheduled_reboot()
    if last:
        info["last"] = {**last, "at_local": last["at"].astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")}
    return info


def never_checked(db: DashboardStore) -> list[dict[str, Any]]:
    """Configured connections (Variable green_api_instances) that have no check in the database."""
    try:
        conn_ids = parse_instances(_variable("green_api_instances"))
    except ConfigError:
        return []
    seen = db.checked_connections(conn_ids)
    return [{"instance_id": conn_id, "connection_id": conn_id, "status": None} for conn_id in conn_ids
            if conn_id not in seen]


def _fleet_filter(q: str | None, status: str | None, host: str | None, offset: int, limit: int) -> FleetFilter:
    try:
        return FleetFilter(q=q or None, status=status or None, host=host or None, offset=offset, limit=limit)
    except BadFilter as exc:
        raise HTTPException(400, str(exc)) from None


def _filter(status: str | None, instance: str | None, page_no: int) -> CheckFilter:
    try:
        return CheckFilter(status=status or None, instance=instance or None, page=page_no)
    except BadFilter as exc:
        raise HTTPException(400, str(exc)) from None


def _window(name: str) -> str:
    try:
        window_of(name)
    except BadFilter as exc:
        raise HTTPException(400, str(exc)) from None
    return name


def _chart(series: dict[str, Any], now: datetime, zone: ZoneInfo, instance: str | None) -> str:
    window = series["window"]
    first = series["buckets"][0]["at"] if series["buckets"] else None  # reboots and alerts happen at checks
    frame = charts.Frame.fitted(WINDOWS[window], now, first, MIN_SPANS[window])
    return charts.timeline(
        title=charts.title(frame, WINDOWS[window], BUCKETS[window], zone, instance),
        frame=frame, buckets=series["buckets"], bucket=BUCKETS[window],
        reboots=series["reboots"], alerts=series["alerts"], mark_bucket=MARK_BUCKETS[window], zone=zone,
    )


def _queue_chart(queue: dict[str, Any], now: datetime, shown: DisplayZone, instance: str | None) -> str:
    first = queue["buckets"][0]["at"] if queue["buckets"] else None
    frame = charts.Frame.fitted(QUEUE_WINDOW, now, first, MIN_SPANS["24h"])
    return charts.queue_chart(
        title="Outgoing queue: " + charts.title(frame, QUEUE_WINDOW, QUEUE_BUCKET, shown.zone, instance),
        frame=frame, buckets=queue["buckets"], bucket=QUEUE_BUCKET, threshold=shown.queue_threshold,
        zone=shown.zone,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def unavailable(_request: Any, exc: Exception) -> JSONResponse:
    """A 503 answer saying the health database is unreachable."""
    return JSONResponse({"detail": str(exc)}, status_code=503)


def _json(data: Any) -> Response:
    return Response(json.dumps(data, default=_plain), media_type="application/json")


async def login_or_error(request: Request, exc: StarletteHTTPException) -> Response:
    """A browser opening the page without a valid session goes to Airflow's login page, which
    brings it back here after the login; any other caller, or route, gets the JSON error."""
    from airflow.api_fastapi.app import get_auth_manager

    route = getattr(request.scope.get("route"), "name", None)
    no_session = exc.status_code == 401 or (exc.status_code == 403 and exc.detail == INVALID_TOKEN)
    if route == PAGE and no_session and "text/html" in request.headers.get("accept", ""):
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(get_auth_manager().get_url_login(next_url=back), status_code=303,
                                headers={"Vary": "Accept"})
    return await http_exception_handler(request, exc)


def build_app() -> FastAPI:
    """The dashboard's FastAPI app: its pages, charts and JSON API, all behind Airflow's login."""
    app = FastAPI(
        title="Green API health",
        description="The numbers behind the Green API dashboard. Authenticate as for Airflow's REST API "
        "(the UI session cookie, or `Authorization: Bearer <token>` from `POST /auth/token`).",
        docs_url=None, redoc_url=None, openapi_url=None, dependencies=[can_read],
        exception_handlers={DatabaseUnavailable: unavailable, StarletteHTTPException: login_or_error},
    )

    @app.get("/", response_class=HTMLResponse, summary="The dashboard page", name=PAGE)
    def dashboard(
        request: Request, status: str | None = None, instance: str | None = None,
        page_no: int = Query(1, alias="page"), q: str | None = None, fleet_status: str | None = None,
        host: str | None = None, fleet_page: int = 1,
    ) -> Response:
        flt = _filter(status, instance, page_no)
        if not 1 <= fleet_page <= 100_000:
            raise HTTPException(400, f"fleet_page must be between 1 and 100000; got {fleet_page}")
        fleet_flt = _fleet_filter(q, fleet_status, host, (fleet_page - 1) * page.FLEET_PAGE_SIZE, page.FLEET_PAGE_SIZE)
        db, now = store(), datetime.now(UTC)
        shown = display_zone(request)
        got = db.together(
            fleet=lambda: db.fleet(fleet_flt, now), counts=db.fleet_counts, incidents=db.open_incidents,
            stats=db.stats_7d, checks=lambda: db.checks(flt), schedule=lambda: schedule_info(db, now),
            never=lambda: never_checked(db),
        )
        data = {
            **got, "now": now, "instances": got["fleet"]["instances"], "status": flt.status, "instance": flt.instance,
            "fleet_filter": fleet_flt, "links": LINKS, "zone_source": shown.source,
            "settings_error": shown.error, "queue_threshold": shown.queue_threshold,
        }
        return HTMLResponse(page.render(data, shown.zone))

    @app.get("/api/instances", summary="The instances, problems first, a page at a time (limit: 50 by default, offset; q "
             "searches instance id, connection id and name; status, host filter): last check, open incidents, "
             "uptime, mean and p95, last readings; the total matching and the counts by status and host")
    def instances(q: str | None = None, status: str | None = None, host: str | None = None, offset: int = 0,
                  limit: int = page.FLEET_PAGE_SIZE) -> Response:  # fmt: skip
        flt = _fleet_filter(q, status, host, offset, limit)
        db, now = store(), datetime.now(UTC)
        got = db.together(fleet=lambda: db.fleet(flt, now), counts=db.fleet_counts, incidents=db.open_incidents,
                          never=lambda: never_checked(db))  # fmt: skip
        by_id: dict[str, list[dict[str, Any]]] = {}
        for incident in got["incidents"]:
            by_id.setdefault(incident["instance_id"], []).append(incident)
        fleet = got["fleet"]
        rows = [{**i, "open_incidents": by_id.get(i["instance_id"], [])} for i in fleet["instances"]]
        after = flt.offset + len(rows)
        return _json({"now": now, "total": fleet["total"], "offset": flt.offset, "limit": flt.limit,
                      "next_offset": after if after < fleet["total"] else None, "counts": got["counts"],
                      "instances": rows, "never_checked": got["never"]})  # fmt: skip

    @app.get("/api/incidents", summary="The open incidents, platform outages first (host, symptom, members)")
    def incidents() -> Response:
        open_ = store().open_incidents()
        return _json({"now": datetime.now(UTC), "outages": page.outages(open_),
                      "incidents": [i for i in open_ if i["kind"] != AlertKind.PLATFORM_OUTAGE.value]})  # fmt: skip

    @app.get("/api/summary", summary="The seed's global statistics over 7 days, and the open incidents")
    def summary() -> Response:
        db = store()
        got = db.together(stats=db.stats_7d, incidents=db.open_incidents)
        return _json({"stats_7d": got["stats"], "open_incidents": got["incidents"]})

    @app.get("/api/series", summary="Response time and failing checks per bucket, reboots and alerts")
    def series(window: str = "24h", instance: str | None = None) -> Response:
        _filter(None, instance, 1)
        return _json(store().series(_window(window), datetime.now(UTC), instance or None))

    @app.get("/api/queue", summary="The outgoing queue over 24 h: the longest read per 5-minute bucket")
    def queue(request: Request, instance: str | None = None) -> Response:
        _filter(None, instance, 1)
        return _json({**store().queue(datetime.now(UTC), instance or None),
                      "threshold": display_zone(request).queue_threshold})

    @app.get("/charts/queue.svg", summary="The outgoing queue's chart as SVG", response_class=Response)
    def queue_chart(request: Request, instance: str | None = None) -> Response:
        _filter(None, instance, 1)
        now = datetime.now(UTC)
        svg = _queue_chart(store().queue(now, instance or None), now, display_zone(request), instance or None)
        return Response(svg, media_type="image/svg+xml")

    @app.get("/charts/{window}.svg", summary="The chart of a window as SVG", response_class=Response)
    def chart(request: Request, window: str, instance: str | None = None) -> Response:
        _filter(None, instance, 1)
        now = datetime.now(UTC)
        svg = _chart(store().series(_window(window), now, instance or None), now, display_zone(request).zone, instance)
        return Response(svg, media_type="image/svg+xml")

    @app.get("/api/checks", summary="The last checks, 50 a page, newest first, with their details")
    def checks(status: str | None = None, instance: str | None = None, page_no: int = Query(1, alias="page")) -> Response:
        return _json(store().checks(_filter(status, instance, page_no)))

    @app.get("/api/checks/{check_id}", summary="One check: error, reboot, incident and alert deliveries")
    def check(check_id: int) -> Response:
        found = store().check(check_id)
        if found is None:
            raise HTTPException(404, f"no check with id {check_id}")
        return _json(found)

    @app.get("/api/schedule", summary="The daily reboot: configured time and zone, next run local and UTC")
    def schedule() -> Response:
        return _json({**schedule_info(store(), datetime.now(UTC)), "links": LINKS})

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> HTMLResponse:
        endpoints = [
            {"path": URL_PREFIX + path, "summary": op.get("summary", ""),
             "parameters": [p["name"] for p in op.get("parameters", [])]}
            for path, item in app.openapi()["paths"].items() for op in item.values()
        ]
        return HTMLResponse(ENV.get_template("api_docs.html").render(
            description=app.description, windows=list(WINDOWS), endpoints=endpoints))

    return app

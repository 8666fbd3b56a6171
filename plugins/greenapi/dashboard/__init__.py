"""The Green API health dashboard: a FastAPI app on Airflow's API server, linked from the navigation."""

from __future__ import annotations

from typing import Any

URL_PREFIX = "/green-api"


def dashboard_link(base_url: str | None = None) -> str:
    """The address of the dashboard in the Airflow UI, for links in alerts and notices.

    ``base_url`` defaults to Airflow's ``[api] base_url`` (what a browser uses to reach the UI).
    """
    if base_url is None:
        from airflow.sdk.configuration import conf

        base_url = conf.get("api", "base_url", fallback="") or "http://localhost:8080"
    return f"{base_url.rstrip('/')}{URL_PREFIX}/"


class LazyDashboard:
    """The ASGI app the plugin mounts. The FastAPI app is built on the first request, so loading the
    plugin (the scheduler and the workers load it for its timetable) costs no web imports."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from greenapi.dashboard.app import build_app

            self._app = build_app()
        await self._app(scope, receive, send)

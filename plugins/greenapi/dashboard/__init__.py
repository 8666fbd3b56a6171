"""The Green API health dashboard: a FastAPI app on Airflow's API server, linked from the navigation."""

from __future__ import annotations

from typing import Any

URL_PREFIX = "/green-api"


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

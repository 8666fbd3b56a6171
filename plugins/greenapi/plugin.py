"""The Airflow plugin of this package (registered by the ``airflow.plugins`` entry point)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from greenapi.dashboard import URL_PREFIX, LazyDashboard
from greenapi.timetables import DailyLocalTimeTimetable


class GreenApiPlugin(AirflowPlugin):
    name = "green_api"
    timetables = [DailyLocalTimeTimetable]
    # The dashboard: served by Airflow's API server, opened from the navigation inside Airflow's UI.
    fastapi_apps = [{"app": LazyDashboard(), "url_prefix": URL_PREFIX, "name": "Green API health"}]
    external_views = [
        {
            "name": "Green API",
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "green-api",
            "destination": "nav",
            "category": None,
            "nav_top_level": True,
        }
    ]

"""The Airflow plugin of this package (registered by the ``airflow.plugins`` entry point)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from greenapi.dashboard import URL_PREFIX, LazyDashboard
from greenapi.timetables import DailyLocalTimeTimetable


class GreenApiPlugin(AirflowPlugin):
    """The dashboard on Airflow's API server, its link in the Browse menu, and the daily reboot's timetable."""
    name = "green_api"
    timetables = [DailyLocalTimeTimetable]
    # The dashboard: a page of its own on Airflow's API server, the address alerts link to.
    fastapi_apps = [{"app": LazyDashboard(), "url_prefix": URL_PREFIX, "name": "Green API health"}]
    # "Green API" in Airflow's Browse menu, a plain link to that page (a new tab). Airflow 3.3's UI
    # frames a view that has a url_route at /plugin/<url_route> and mirrors the frame's own path into
    # the address bar (useIframeUrlSync), which would read /plugin/green-api/green-api/; and it draws a
    # link without url_route outside a menu as a <button href> that does nothing when clicked.
    external_views = [
        {
            "name": "Green API",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "category": "browse",
        }
    ]

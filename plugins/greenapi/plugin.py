"""The Airflow plugin of this package (registered by the ``airflow.plugins`` entry point)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from greenapi.timetables import DailyLocalTimeTimetable


class GreenApiPlugin(AirflowPlugin):
    name = "green_api"
    timetables = [DailyLocalTimeTimetable]

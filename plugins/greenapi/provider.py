"""Provider metadata: registers the "Green API" connection type and its form in Airflow."""

from __future__ import annotations

from typing import Any

from greenapi import __version__


def _seconds(label: str, default: float, description: str) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["number", "null"], "minimum": 0.1, "maximum": 600, "default": default},
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-green-api-health",
        "name": "Green API health",
        "description": "Health checks, reboots and WhatsApp alerts for Green API instances.",
        "versions": [__version__],
        "hooks": [{"integration-name": "Green API", "python-modules": ["greenapi.hooks.green_api"]}],
        "connection-types": [
            {
                "hook-class-name": "greenapi.hooks.green_api.GreenApiHook",
                "hook-name": "Green API",
                "connection-type": "green_api",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API URL (apiUrl)",
                        "login": "Instance id (idInstance)",
                        "password": "API token (apiTokenInstance)",
                    },
                    "placeholders": {
                        "host": "https://7105.api.greenapi.com",
                        "login": "1101000001",
                        "password": "token from the Green API console",
                    },
                },
                "conn-fields": {
                    "state_timeout": _seconds("State check timeout (s)", 10, "getStateInstance timeout"),
                    "reboot_timeout": _seconds("Reboot timeout (s)", 30, "reboot call timeout"),
                    "send_timeout": _seconds("Send timeout (s)", 20, "sendMessage timeout"),
                    "dashboard_url": {
                        "label": "Dashboard link",
                        "description": "Link put in alerts (default: the dashboard in the Airflow UI)",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }

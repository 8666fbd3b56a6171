"""Provider metadata: what ``airflow providers`` lists, and the "Green API" connection type with its form."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from greenapi import __version__


def _seconds(label: str, default: float, description: str) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["number", "null"], "minimum": 0.1, "maximum": 600, "default": default},
    }


def _instance_fields(whose: str) -> dict[str, Any]:
    """The form fields of how an instance is called, for both connection types (``whose``: the
    partner form's "each instance's ")."""
    return {
        "state_timeout": _seconds("State check timeout (s)", 10, f"{whose}getStateInstance timeout"),
        "reboot_timeout": _seconds("Reboot timeout (s)", 30, f"{whose}reboot call timeout"),
        "send_timeout": _seconds("Send timeout (s)", 20, f"{whose}sendMessage timeout"),
        "dashboard_url": {
            "label": "Dashboard link",
            "description": "Link put in alerts (default: the dashboard in the Airflow UI)",
            "schema": {"type": ["string", "null"]},
        },
    }


def _instance_type(hook_class: str, hook_name: str, conn_type: str) -> dict[str, Any]:
    """The connection type of one instance, with its form (the type's name and its former one)."""
    return {
        "hook-class-name": f"greenapi.hooks.green_api.{hook_class}",
        "hook-name": hook_name,
        "connection-type": conn_type,
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
            **_instance_fields(""),
            "name": {
                "label": "Name",
                "description": "How people call the instance, beside its id in alerts (tasks get no Description)",
                "schema": {"type": ["string", "null"]},
            },
            "expected_settings": {
                "label": "Expected settings (JSON)",
                "description": ('getSettings keys the instance must keep, e.g. {"incomingWebhook": "yes", '
                                '"webhookUrl": "https://bot.example.com/hook"}; a change opens a '
                                "settings_drift incident"),
                "schema": {"type": ["string", "null"]},
            },
        },
    }


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers`` lists, and the connection type with its form and Test button."""
    return {
        "package-name": "airflow-provider-green-api",
        "name": "Green API",
        "description": "`Green API <https://green-api.com/>`__ (WhatsApp HTTP API): send messages, reboot and "
        "watch instances, and the DAGs that keep them healthy.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Green API",
                "external-doc-url": "https://green-api.com/en/docs/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Green API", "python-modules": ["greenapi.hooks.green_api"]}],
        "operators": [{"integration-name": "Green API", "python-modules": ["greenapi.operators.green_api"]}],
        "sensors": [{"integration-name": "Green API", "python-modules": ["greenapi.sensors.green_api"]}],
        "triggers": [{"integration-name": "Green API", "python-modules": ["greenapi.triggers.green_api"]}],
        "notifications": ["greenapi.notifications.green_api.GreenApiNotifier"],
        # The dashboard's plugin belongs to the monitoring DAGs, not to the provider: listed when installed.
        "plugins": [{"name": "green_api", "plugin-class": "greenapi.plugin.GreenApiPlugin"}]
        if find_spec("greenapi.plugin") is not None else [],
        "connection-types": [
            _instance_type("GreenApiHook", "Green API", "greenapi"),
            # Its former name: connections of that type keep working until the start migrates them.
            _instance_type("GreenApiLegacyHook", "Green API (former type green_api)", "green_api"),
            {
                "hook-class-name": "greenapi.hooks.green_api.GreenApiPartnerHook",
                "hook-name": "Green API partner",
                "connection-type": "greenapipartner",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Partner API URL (partnerApiUrl)", "password": "Partner token (partnerToken)"},
                    "placeholders": {"host": "https://api.green-api.com", "password": "token from Green API's support"},
                },
                "conn-fields": {
                    "api_url": {
                        "label": "Instances' API URL",
                        "description": "apiUrl of the account's instances (default https://api.green-api.com)",
                        "schema": {"type": ["string", "null"]},
                    },
                    "time_zone": {
                        "label": "Time zone of the account's dates",
                        "description": "getInstances' dates carry no zone (default Europe/Moscow, UTC+3 as Green API's billing)",
                        "schema": {"type": ["string", "null"]},
                    },
                    "partner_timeout": _seconds("Listing timeout (s)", 30, "getInstances timeout"),
                    **_instance_fields("each instance's "),
                },
            },
        ],
    }

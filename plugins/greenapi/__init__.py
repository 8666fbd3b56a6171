"""Green API for Apache Airflow 3: a provider (hook, operators, sensor, trigger, notifier) and the
glue of the health-monitoring DAGs built from it.

Layers (each arrow points one way): ``dags/`` -> ``tasks`` -> (``operators``, ``sensors``,
``notifications``) -> ``triggers`` -> (``hooks``, ``store``) -> ``domain``. ``domain`` is pure: no
Airflow, HTTP or SQL imports. The provider (``domain``, ``hooks``, ``operators``, ``sensors``,
``triggers``, ``notifications``, ``masking``, ``provider``) imports nothing of the rest: ``tasks``,
``store``, the dashboard and the plugin are the monitoring DAGs'.
"""

from __future__ import annotations

__version__ = "0.2.0"

"""Green API health monitoring for Apache Airflow 3.

Layers (each arrow points one way): ``dags/`` -> ``tasks`` -> (``hooks``, ``store``) -> ``domain``.
``domain`` is pure: no Airflow, HTTP or SQL imports.
"""

from __future__ import annotations

__version__ = "0.1.0"

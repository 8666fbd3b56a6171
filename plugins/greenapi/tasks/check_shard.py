"""The health check's mapped check task: the provider's check, then the quiet healthy instances settled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from greenapi.operators.green_api import GreenApiHealthCheckOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class HealthCheckShard(GreenApiHealthCheckOperator):
    """``GreenApiHealthCheckOperator`` for the health-check DAG: after its checks, the healthy
    instances with nothing to follow up are counted and logged here, in one transaction, and only
    the other checks go on (see :func:`greenapi.tasks.health_check.settle_step`)."""

    def execute(self, context: Context) -> dict[str, Any]:
        from greenapi.tasks.health_check import settle_step

        return settle_step(super().execute(context))

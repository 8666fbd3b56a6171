"""The health check's mapped check task: the provider's check, then the quiet healthy instances settled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from greenapi.operators.green_api import GreenApiHealthCheckOperator

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.sdk import Context

    from greenapi.domain.broken import Read
    from greenapi.tasks.context import TaskContext


class HealthCheckShard(GreenApiHealthCheckOperator):
    """``GreenApiHealthCheckOperator`` for the health-check DAG.

    Mapped by ``plan_checks`` over shard numbers, not connection ids, so that what the plan passes
    on stays the same size whatever the number of instances: each task reads Variable
    ``green_api_instances`` and checks its part (``shard`` of ``shards``). After its checks, the
    healthy instances with nothing to follow up are counted and logged here, in one transaction,
    and only the other checks go on (see :func:`greenapi.tasks.health_check.settle_step`).
    Each authorized instance's socket is read at every check, its queue and its settings when
    their periods are due (:func:`greenapi.tasks.health_check.reads_due`).

    :param shard: this task's part, from 0.
    :param shards: how many parts the plan made.
    :param instances_digest: the fingerprint of the list the plan split (a change is logged).
    :param listed_both_ways: the idInstance of partner accounts' instances that have a connection
        in the list too (checked under it).
    :param problems: the plan's problems (partner accounts it could not list), carried on in this
        task's batch so that the run reports them.
    :param unlisted: the partner connections the plan could not list: their instances are not
        checked in this run.
    :param only: in a run the watch started, the connection ids that changed (the others wait
        for the schedule); None: the whole list.
    """

    def __init__(self, *, shard: int, shards: int, instances_digest: str, listed_both_ways: Sequence[str] = (),
                 problems: Sequence[str] = (), unlisted: Sequence[str] = (), only: Sequence[str] | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(green_api_conn_ids=[], **kwargs)
        self.shard, self.shards, self.instances_digest = shard, shards, instances_digest
        self.listed_both_ways, self.problems, self.unlisted = list(listed_both_ways), list(problems), list(unlisted)
        self.only = None if only is None else list(only)
        self._ctx: TaskContext | None = None

    def reads_for(self, conn_ids: Sequence[str]) -> Callable[[str], frozenset[Read]]:
        """What to read of each authorized instance beyond its state, when its periods are due."""
        from greenapi.tasks.health_check import reads_due

        assert self._ctx is not None
        return reads_due(self._ctx)

    def execute(self, context: Context) -> dict[str, Any]:
        """Check this task's part of the list, then count and log its quiet healthy instances."""
        from greenapi.dashboard import dashboard_link
        from greenapi.tasks.context import TaskContext
        from greenapi.tasks.health_check import settle_step, shard_conn_ids

        self._ctx = ctx = TaskContext.load()
        part = shard_conn_ids(ctx, self.shard, self.shards, self.instances_digest, self.listed_both_ways,
                              self.unlisted, self.only)  # fmt: skip
        self.green_api_conn_ids = part.keys
        self.dashboard_url = self.dashboard_url or dashboard_link()
        self.expiry_warning_days = ctx.settings.expiry_warning_days
        batch = super().execute(context)
        for problem in part.problems:
            self.log.error("%s", problem)
        batch["problems"] = [*self.problems, *part.problems, *batch["problems"]]
        return settle_step(ctx, batch)

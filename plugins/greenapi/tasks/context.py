"""What a task of this package's DAGs knows of its run, loaded once: the settings, the run's
logical time and ids, and its XComs. One error behaviour for bad settings, in every task."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from greenapi.domain.codec import decode
from greenapi.domain.config import SETTINGS_VARIABLE, ConfigError, Settings, parse_settings
from greenapi.domain.rules import trigger_type_for

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")
log = logging.getLogger(__name__)

ERROR_KEY = "error"  # XCom of a task stopped by the configuration: the run's report names it


def settings_raw() -> Any:
    """Variable ``green_api_settings`` as stored (None when unset)."""
    from airflow.sdk import Variable

    return Variable.get(SETTINGS_VARIABLE, default=None)


@dataclass(frozen=True)
class TaskContext:
    """The run a task belongs to, and the settings it runs with.

    ``now`` is the run's logical time (its logical date, else when it was due): incident timing
    follows it, so that tests can drive runs through simulated hours.
    """

    settings: Settings
    now: datetime
    run_after: datetime  # when the run was due (for a manual run: when it was triggered)
    dag_id: str
    run_id: str
    run_type: str
    try_number: int
    ti: Any

    @classmethod
    def load(cls) -> TaskContext:
        """The current task's context. A bad ``green_api_settings`` fails the task naming the key
        (:meth:`fail`): nothing is called, nothing written."""
        from airflow.sdk import get_current_context

        context = get_current_context()
        dag_run, ti = context["dag_run"], context["ti"]
        moment = dag_run.logical_date or dag_run.run_after
        base = {"now": datetime.fromisoformat(moment.isoformat()),
                "run_after": datetime.fromisoformat(dag_run.run_after.isoformat()),
                "dag_id": dag_run.dag_id, "run_id": dag_run.run_id,
                "run_type": str(getattr(dag_run.run_type, "value", dag_run.run_type)),
                "try_number": int(ti.try_number), "ti": ti}  # fmt: skip
        try:
            settings = parse_settings(settings_raw())
        except ConfigError as exc:
            cls(Settings(), **base).fail(str(exc))
        return cls(settings, **base)

    @property
    def run_again(self) -> bool:
        """This task ran before in this run (cleared or retried)."""
        return self.try_number > 1

    @property
    def trigger_type(self) -> str:
        """``manual`` for a run triggered by hand, else ``automatic`` (the health-log column)."""
        return trigger_type_for(self.run_type)

    def fail(self, message: str) -> NoReturn:
        """Fail the task for good (no retry), keeping ``message`` for the run's report (a failed
        task passes nothing downstream)."""
        from airflow.sdk.exceptions import AirflowFailException

        self.ti.xcom_push(key=ERROR_KEY, value=message)
        raise AirflowFailException(message) from None

    def checked(self, parse: Callable[[], T]) -> T:
        """``parse()``, a bad configuration failing the task as :meth:`fail` does."""
        try:
            return parse()
        except ConfigError as exc:
            self.fail(str(exc))

    def keep(self, key: str, value: Any) -> None:
        """Push ``value`` under ``key`` (beside the task's return value)."""
        self.ti.xcom_push(key=key, value=value)

    def pulled(self, task_id: str, key: str, kind: type[T]) -> T | None:
        """What task ``task_id`` of this run pushed under ``key``, read into ``kind`` (None if nothing).

        Read by task id where Airflow gives no other way: a failed task passes nothing downstream."""
        raw = self.ti.xcom_pull(task_ids=task_id, key=key)
        return None if raw is None else decode(kind, raw)

    def latest(self, task_id: str, key: str, kind: type[T]) -> T | None:
        """The latest value task ``task_id`` of this DAG pushed under ``key``, in this run or the
        latest earlier one (by logical date): one value, however long the history. A value that no
        longer reads as ``kind`` (written by an older version) counts as none."""
        from pydantic import ValidationError

        raw = self.ti.xcom_pull(task_ids=task_id, key=key, include_prior_dates=True, map_indexes=-1)
        if raw is None:
            return None
        try:
            return decode(kind, raw)
        except ValidationError:
            log.warning("the XCom %s of %s no longer reads as %s: ignored", key, task_id, getattr(kind, "__name__", kind))
            return None

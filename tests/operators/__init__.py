"""Runs of DAGs that are not in dags/ (built in a test, or the examples), with Airflow's ``dag.test()``."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.conftest import require_env
from tests.e2e.conftest import RunOutcome, run_dag


def run_unlisted_dag(dag: Any, **kwargs: Any) -> RunOutcome:
    """``dag.test()`` of a DAG outside the dags folder.

    ``dag.test()`` only serializes the DAGs of the configured bundles (dags/), and a run needs its
    DAG serialized: this writes it first, as the DAG processor would, under the dags-folder bundle.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )
    return run_dag(dag, **kwargs)


def xcom(dag_id: str, run_id: str, task_id: str) -> Any:
    """The return value a task pushed, as Airflow stored it (JSON)."""
    with psycopg.connect(require_env("GREEN_API_AIRFLOW_DB_URL")) as conn:
        row = conn.execute(
            "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = 'return_value'",
            (dag_id, run_id, task_id),
        ).fetchone()
    assert row is not None, f"no XCom from {task_id}"
    return row[0]  # a JSON column: psycopg decodes it


def stored_text(run_id: str) -> str:
    """Every XCom and rendered template field of a run, as text (for leak scans)."""
    with psycopg.connect(require_env("GREEN_API_AIRFLOW_DB_URL")) as conn:
        rows = conn.execute(
            "SELECT x::text FROM xcom x WHERE run_id = %s"
            " UNION ALL SELECT r::text FROM rendered_task_instance_fields r WHERE run_id = %s",
            (run_id, run_id),
        ).fetchall()
    return "\n".join(r[0] for r in rows)

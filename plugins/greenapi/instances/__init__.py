"""Many Green API instances in one step: a file of instances (CSV or YAML) becomes Airflow
connections and entries of Variable ``green_api_instances``, merged with what is there.

``python -m greenapi.instances add FILE | remove ID... | list`` (``__main__``): against a running
Airflow through its REST API, or with ``--metadata-db`` straight into Airflow's database, as
``make run`` and the compose init do at each start. Both go through one plan (``plan``): every row
is checked before anything is written (``source``), a second import of the same file changes
nothing, and no token is ever printed.

Deployment tooling, not the provider: no module of the provider imports it (tests/test_layers.py).
"""

from __future__ import annotations

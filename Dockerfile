# The Airflow image with this package and its pinned requirements (docker-compose.yaml builds it).
FROM apache/airflow:3.3.2-python3.11

# The same pins as `make install`; Airflow itself is already there at the same version.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

# The package lives in /opt/airflow/plugins (as in the official layout), installed in editable
# mode so that its entry points (the plugin: dashboard and timetable; the "Green API" connection
# type) are registered, and so that a mounted ./plugins is the code that runs.
COPY --chown=airflow:0 pyproject.toml /opt/airflow/pyproject.toml
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 sql /opt/airflow/sql
COPY --chown=airflow:0 scripts/connections.sh scripts/import_env.py docker/entrypoint.sh docker/init.sh /opt/airflow/docker/
RUN pip install --no-cache-dir --no-deps -e /opt/airflow && rm -rf /opt/airflow/plugins/*.egg-info

ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/airflow/docker/entrypoint.sh"]
CMD []

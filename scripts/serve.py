#!/usr/bin/env python3
"""Airflow's components for `make run`, in an order that loses no task, and the retention job.

``airflow standalone`` starts the scheduler while the API server may still be loading: tasks
that start then cannot reach the Execution API and fail. Here the API server comes first; the
dag-processor, the scheduler (LocalExecutor) and the triggerer start once it answers, and the
retention job (``python -m greenapi.retention``) runs beside them. Only the API server listens
(``[api] host``, 127.0.0.1 in `make run`): the scheduler and the triggerer serve no logs over the
network, as the API server reads them from ``$AIRFLOW_HOME/logs`` on this machine.

Every line of every component is printed with its name. Ctrl-C (or SIGTERM) stops them all; if
one of them exits, the others are stopped and the exit status says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

API_WAIT_SECONDS = 180
STOP_SECONDS = 30


@dataclass(frozen=True)
class Component:
    name: str
    command: list[str]
    log: Path | None = None  # written there instead of the terminal


def components(python: str, home: Path) -> tuple[Component, list[Component]]:
    airflow = str(Path(python).with_name("airflow"))
    api = Component("api-server", [airflow, "api-server"])
    rest = [
        Component("dag-processor", [airflow, "dag-processor"]),
        Component("scheduler", [airflow, "scheduler", "--skip-serve-logs"]),
        Component("triggerer", [airflow, "triggerer", "--skip-serve-logs"]),
        Component("retention", [python, "-m", "greenapi.retention", "--every", "24"], home / "logs" / "retention.log"),
    ]
    return api, rest


class Supervisor:
    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def say(self, name: str, line: str) -> None:
        with self.lock:
            sys.stdout.write(f"{name:<13} | {line}\n")
            sys.stdout.flush()

    def start(self, component: Component) -> None:
        if component.log is not None:
            component.log.parent.mkdir(parents=True, exist_ok=True)
            out = component.log.open("ab")
            proc = subprocess.Popen(component.command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            out.close()
            self.say(component.name, f"started (log: {component.log})")
        else:
            proc = subprocess.Popen(component.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
            threading.Thread(target=self._pump, args=(component.name, proc), daemon=True).start()
        self.procs[component.name] = proc

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.say(name, raw.decode("utf-8", errors="replace").rstrip())

    def exited(self) -> str | None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        """Everything but the API server, then the API server: a task still running when the
        scheduler stops reports its end through the API server (stopped first, the task's
        supervisor would retry it until it is killed)."""
        last = [p for name, p in self.procs.items() if name == "api-server"]
        for group in ([p for p in self.procs.values() if p not in last], last):
            for proc in group:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_SECONDS
            for proc in group:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def api_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    home = Path(os.environ["AIRFLOW_HOME"])
    port = os.environ.get("AIRFLOW__API__PORT", "8080")
    local_url = f"http://127.0.0.1:{port}"
    supervisor = Supervisor()
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stopping.set())
    api, rest = components(sys.executable, home)
    status = 0
    try:
        supervisor.start(api)
        deadline = time.monotonic() + API_WAIT_SECONDS
        while not api_answers(local_url):
            if supervisor.stopping.wait(0.5):
                return 0
            if supervisor.exited() or time.monotonic() > deadline:
                supervisor.say("serve", f"the API server did not come up within {API_WAIT_SECONDS} s: see its lines above")
                return 1
        supervisor.say("serve", f"API server ready at {local_url}; starting the scheduler and the others")
        for component in rest:
            supervisor.start(component)
        supervisor.say("serve", "Airflow is up: open the UI address shown above; Ctrl-C stops everything")
        while not supervisor.stopping.wait(1):
            gone = supervisor.exited()
            if gone:
                supervisor.say("serve", f"{gone} exited (status {supervisor.procs[gone].returncode}): stopping the others")
                status = 1
                break
    finally:
        supervisor.say("serve", "stopping")
        supervisor.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())

"""A pytest plugin for runs under Debian's libfaketime 0.9.10 that fake the wall clock only.

With ``FAKETIME_DONT_FAKE_MONOTONIC=1`` timeouts and durations stay true, but that libfaketime's
``clock_nanosleep()`` refuses the absolute monotonic deadline ``time.sleep()`` passes it (EINVAL),
while timed waits on locks work: ``time.sleep`` becomes such a wait, of the same length.
See tests/test_any_hour.py.
"""

from __future__ import annotations

import threading
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


time.sleep = _sleep

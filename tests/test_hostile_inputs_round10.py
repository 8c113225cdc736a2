"""Round 10: what CI on a fresh install found."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from feedback_nlp.errors import UsageError


@pytest.mark.timeout(60)
def test_a_failed_dask_connection_never_hangs_the_next_one(monkeypatch):
    # distributed 2026.8: a Client that failed to start sat in a reference cycle; when the garbage collector ran
    # its __del__ inside the next Client's start, it waited on the loop lock that start held: CI hung 90 minutes.
    # A collection whenever a thread is made (the loop's thread is made under that lock) makes the timing certain.
    distributed = pytest.importorskip("distributed")
    from feedback_nlp.dask import _client

    init = threading.Thread.__init__

    def collecting_init(self, *args, **kwargs):
        gc.collect()
        init(self, *args, **kwargs)

    monkeypatch.setattr(threading.Thread, "__init__", collecting_init)
    started = time.monotonic()
    for address in ["not a scheduler", "http://127.0.0.1:8787", "scheduler.local"]:
        with pytest.raises(UsageError, match="is not a Dask scheduler address"):
            _client(distributed, address)
    # without the fix only pytest-timeout's alarm (60 s) broke the deadlock, inside the __del__
    assert time.monotonic() - started < 30

"""A real Celery worker process on the configured broker (filesystem by default, Redis in CI)."""

import os
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache

from apps.core.tasks import ping_task

pytestmark = pytest.mark.worker


@pytest.fixture
def worker_queue():
    # A queue of its own, so messages left by `make run` or another test run are not picked up.
    queue = f"test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "readiness", "worker", "-Q", queue, "--pool", "solo", "-l", "warning"],
        cwd=settings.BASE_DIR,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield queue
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_a_real_worker_runs_a_task_sent_through_the_broker(worker_queue):
    token = uuid.uuid4().hex
    ping_task.apply_async(args=[token], queue=worker_queue)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and cache.get(f"ping:{token}") is None:
        time.sleep(0.2)
    assert cache.get(f"ping:{token}") == "pong"

"""Shared fixtures."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url():
    """A Redis to test against: $IVR_TEST_REDIS_URL if set, else a throwaway redis-server
    (no persistence) for the session. Tests isolate themselves with a per-test key prefix."""
    if os.environ.get("IVR_TEST_REDIS_URL"):
        yield os.environ["IVR_TEST_REDIS_URL"]
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not installed and IVR_TEST_REDIS_URL not set "
                    "(apt install redis-server, or point IVR_TEST_REDIS_URL at a Redis)")
    import redis

    port = _free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(f"redis-server on port {port} did not start: "
                                       f"{proc.communicate()[1].decode(errors='replace')}")
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

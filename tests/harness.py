"""Processes the fault tests and the load benchmarks start: a throwaway redis-server and `ivr serve`.

Everything listens on 127.0.0.1 only, and every process started here is stopped here, by its own
pid (or process group, for gunicorn's master and its workers), never by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

REPO = Path(__file__).resolve().parent.parent
FLOWS = REPO / "call_flows"
TOKEN = "harness-token-0123456789abcdef0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server of our own (no persistence) that can be stopped, frozen and thawed."""

    def __init__(self, port: int | None = None):
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary, self.port = binary, port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        import redis

        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not start")
                time.sleep(0.05)
        client.close()
        return self

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Served:
    """`ivr serve` (gunicorn) on a free port; stopped with its process group."""

    def __init__(self, store: str, workers: int = 2, threads: int = 4, flows: list[Path] | None = None,
                 extra: list[str] | None = None, env: dict | None = None, log: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ivr = Path(sys.executable).parent / "ivr"
        self.command = [str(ivr), "serve", "--port", str(self.port), "--store", store,
                        "--workers", str(workers), "--threads", str(threads)]
        for flow in flows or [FLOWS / "bank_hotline.yaml"]:
            self.command += ["--flow", str(flow)]
        self.command += extra or []
        self.env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, **(env or {})}
        self.log_path = log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Served":
        out = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = self.log_path.read_text(errors="replace") if self.log_path else ""
                raise RuntimeError(f"ivr serve did not start: {text[-3000:]}")
            time.sleep(0.02)

    def workers(self) -> list[int]:
        """The gunicorn workers: children of the master (which is the `ivr serve` process), less the
        master's other child, the background-jobs process (ivr.cli.start_background: flow watcher and
        reconciler), which is not a worker."""
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        pids = []
        for pid in text.split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            if b"background_jobs" not in cmdline:
                pids.append(int(pid))
        return pids

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def close_sessions(*sessions: requests.Session) -> None:
    """Close the clients' kept-alive connections before a server is stopped: gunicorn's graceful stop
    (SIGTERM) waits up to 2 s for them. Session.close() alone does not close them: urllib3 2 closes a
    pool's connections only when the pool is garbage-collected, and a Response kept in a variable (or a
    traceback in a reference cycle) keeps its pool alive; so each pool is closed here."""
    for session in sessions:
        for adapter in session.adapters.values():
            pools = adapter.poolmanager.pools
            for key in pools.keys():
                try:
                    pools[key].close()
                except KeyError:
                    pass
        session.close()


class Signer:
    """Signed, Twilio-shaped POSTs to a served app (one requests.Session per thread)."""

    def __init__(self, base: str, token: str = TOKEN):
        self.base, self.validator = base.rstrip("/"), RequestValidator(token)

    def post(self, session: requests.Session, path: str, params: dict, timeout: float = 60) -> requests.Response:
        url = self.base + path
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        return session.post(url, data=params, headers=headers, timeout=timeout)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]

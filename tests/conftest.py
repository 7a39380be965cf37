"""Shared fixtures."""
from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Under pytest-xdist (pyproject's addopts: -n auto --dist load) tests are sent to the workers one by
# one, except these modules, each run whole on one worker: why.
ONE_WORKER = {
    "tests/test_calls.py": "one `ivr serve`, and the in-process outcomes the comparison over HTTP reuses",
    "tests/test_faults.py": "one fault scenario (a gunicorn and its outage) at a time",
    "tests/test_line.py": "the clip corpus is generated once (espeak-ng, sox)",
    "tests/test_replay.py": "the calls are recorded once",
    "tests/test_report.py": "the calls are made once",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist load, but each module of ONE_WORKER is one unit of work. (xdist's own loadgroup, with
    pytest.mark.xdist_group, groups nothing on pytest 9.2: pytest-xdist issue #1386.) The units are
    queued largest first, so these modules start early and single tests fill in behind them."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesKeptTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER else nodeid

    return ModulesKeptTogether(config, log)


@dataclass
class Ran:
    """What `ivr ARGS...` did: like subprocess.CompletedProcess (returncode, stdout, stderr)."""
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def ivr(capsys, monkeypatch):
    """Run `ivr ARGS...` in this process (ivr.cli.main), from the repository root, as the console script
    would: exit code (SystemExit included, its message on stderr), stdout, and stderr with the log lines
    that ivr.cli's logging set-up writes there (INFO and up). Each command keeps one subprocess smoke test;
    the rest go through here, without starting a Python per command."""
    from ivr.cli import main

    monkeypatch.chdir(REPO)

    def run(*args) -> Ran:
        capsys.readouterr()
        root = logging.getLogger()
        handler = logging.StreamHandler(sys.stderr)  # the captured stderr of this test
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # what the interpreter does with it at exit
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


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
    from harness import RedisServer

    redis_server = RedisServer().start()
    try:
        yield redis_server.url
    finally:
        redis_server.stop()

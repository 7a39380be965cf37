"""Work that runs beside the webhooks, never on a request's path: publishing edited flows,
closing lost calls. One daemon thread per job; a failing round is logged and the next one runs."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from ivr.store import StoreError

log = logging.getLogger("ivr.call")


class Every:
    def __init__(self, name: str, seconds: float, job: Callable[[], object]):
        self.name, self.seconds, self.job = name, seconds, job
        self._stop = threading.Event()

    def start(self) -> "Every":
        threading.Thread(target=self._loop, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.job()
            except StoreError as exc:  # the store down or frozen: expected in an outage, one line each round
                log.warning("%s: the store failed this round (%s); the next one runs in %g s", self.name, exc,
                            self.seconds)
            except Exception:  # noqa: BLE001 - the job must outlive any one bad moment (a store down, a bad file)
                log.exception("%s: this round failed; the next one runs in %g s", self.name, self.seconds)

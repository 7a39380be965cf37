"""Numbers read from the environment (IVR_WEBHOOK_BUDGET, IVR_STORE_COOLDOWN, ...), checked: a value that is
not a number stops the server with one line naming the setting, not a traceback."""
from __future__ import annotations

import os


class SettingError(ValueError):
    """An environment setting that is not what it must be."""


def seconds(name: str, default: float) -> float:
    return _number(name, default, float, "a number of seconds, e.g. 1.5")


def whole(name: str, default: int) -> int:
    return _number(name, default, int, "a whole number, e.g. 4")


def _number(name: str, default, kind, what: str):
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SettingError(f"{name}={raw[:40]!r} is not {what}; set it right or unset it "
                           f"(the default is {default})") from None

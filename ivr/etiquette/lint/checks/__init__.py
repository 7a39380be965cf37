"""The rule checks, one module per rule family; importing this package registers them all."""
from ivr.etiquette.lint.checks import greeting, ladders, hold_transfer, ending, wording, complaint, timing  # noqa: F401

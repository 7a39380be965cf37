"""The one error the engine raises: a flow or call state it cannot go on with."""


class EngineError(Exception):
    """The platform answers the caller with the flow's apology and fallback."""

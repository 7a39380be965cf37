"""The call core every entry point shares: the call session, the flow registry, the log's facts."""

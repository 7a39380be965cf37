"""The only package that knows Twilio: webhooks, TwiML, signatures, Twilio's limits.

`create_app` is imported on first use, so the flow loader can read `ivr.twilio.limits`
without loading the web app (which itself loads flows)."""

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from ivr.twilio.app import create_app

        return create_app
    raise AttributeError(f"module 'ivr.twilio' has no attribute '{name}'")

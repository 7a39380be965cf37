"""The only package that knows Twilio: webhooks, TwiML, signatures."""
from ivr.twilio.app import create_app

__all__ = ["create_app"]

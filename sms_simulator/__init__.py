"""Twilio-compatible SMS simulator for development and tests.

Run it with ``python -m sms_simulator``; see README.md beside this file.
"""

from .app import Simulator, create_app
from .settings import Settings

__all__ = ["Settings", "Simulator", "create_app"]

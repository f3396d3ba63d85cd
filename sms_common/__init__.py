"""Helpers every process shares (backend, Rasa connector, actions, simulator): one of each.

Kept free of third-party imports except `twilio` and `python-json-logger`, which both virtual
environments pin, and compatible with Python 3.10 (the Rasa venv).
"""

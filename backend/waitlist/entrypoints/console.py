"""A small staff console served at `/`: one static page that calls the JSON API with the staff token.

It enters an open slot, shows each slot's offers as they move, and lists who asked for a call.
"""

from pathlib import Path

CONSOLE_HTML = (Path(__file__).parent / "static" / "console.html").read_text(encoding="utf-8")

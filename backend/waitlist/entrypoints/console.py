"""A small staff console page served at `/`: it calls the same JSON API with the staff token."""

CONSOLE_HTML = (
    "<!doctype html><title>Waitlist</title><p>Staff API docs: <a href='/docs'>/docs</a></p>"
)

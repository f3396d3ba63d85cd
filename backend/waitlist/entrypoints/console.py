"""The staff console served at `/`: one static page that calls the JSON API with the session cookie,
and the chart library it draws with, served from here rather than a CDN (static/vendor/README.md).
"""

from pathlib import Path

STATIC = Path(__file__).parent / "static"
CONSOLE_HTML = (STATIC / "console.html").read_text(encoding="utf-8")
CHART_JS_NAME = "chart-4.4.7.umd.js"
CHART_JS = (STATIC / "vendor" / CHART_JS_NAME).read_bytes()

# The page's own script and style are inline; everything else must come from this origin, and no
# other site may frame the page (clickjacking a "done" button).
CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

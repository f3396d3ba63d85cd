"""``python -m sms_simulator``: serve the simulator on SIMULATOR_HOST:SIMULATOR_PORT."""

from __future__ import annotations

from sms_common.logging_setup import configure_logging

from .app import create_app
from .settings import Settings


def main() -> None:
    configure_logging("simulator")
    settings = Settings.from_env()
    app = create_app(settings)
    # No access log: its URLs would carry patients' numbers (/simulator/messages?to=+1...).
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        motd=False,
    )


if __name__ == "__main__":
    main()

"""``python -m sms_simulator``: serve the simulator on SIMULATOR_HOST:SIMULATOR_PORT."""

from __future__ import annotations

import logging

from .app import create_app
from .settings import Settings


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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

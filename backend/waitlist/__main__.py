"""Start the backend: `python -m waitlist` (port 8000, or BACKEND_PORT).

`python -m waitlist users add NAME --role admin` manages staff accounts instead (waitlist/cli.py).
"""

from __future__ import annotations

import os
import sys

from sms_common.logging_setup import configure_logging, route_sanic_loggers
from waitlist.adapters import database, migrations, orm
from waitlist.adapters.messenger import RasaMessenger
from waitlist.config import Settings
from waitlist.entrypoints.app import Backend, create_app
from waitlist.entrypoints.scheduler import Worker
from waitlist.service_layer.clock import SystemClock
from waitlist.service_layer.unit_of_work import UnitOfWork


def main() -> None:
    # plain lines, or JSON lines with LOG_FORMAT=json; `make run` rotates the files
    handler = configure_logging("backend")
    settings = Settings.from_env()
    url = settings.database_url or database.start_embedded_postgres(settings.data_dir)
    migrations.upgrade(url)
    orm.start_mappers()
    session_factory = UnitOfWork.session_factory_for(database.create_engine(url))
    clock = SystemClock()
    messenger = RasaMessenger(settings.rasa_url, settings.rasa_api_token)
    worker = Worker(lambda: UnitOfWork(session_factory), messenger, clock, settings)
    backend = Backend(settings, session_factory, messenger, clock, worker)
    app = create_app(backend)
    # Sanic installs its own console handlers when the app starts; send its lines through ours
    app.register_listener(lambda *_: route_sanic_loggers(handler), "main_process_start")
    app.run(
        host=os.environ.get("BACKEND_HOST", "127.0.0.1"),
        port=int(os.environ.get("BACKEND_PORT", "8000")),
        single_process=True,
        access_log=False,
        motd=False,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        from waitlist import cli

        sys.exit(cli.main(sys.argv[1:]))
    main()

"""`python -m rasa_runtime.rasa_server`: the Rasa server with its HTTP API, started from Python.

It does what `rasa run --enable-api --model models/waitlist.tar.gz --credentials credentials.yml
--endpoints endpoints.yml` does, with three differences:

- the API token comes from RASA_API_TOKEN in the environment, never from the command line (where
  `ps` would show it to every user of the machine); without it the server refuses to start;
- it listens on RASA_HOST (default 127.0.0.1) instead of every interface, port RASA_PORT (5005);
- request bodies are capped at 1 MB (Sanic answers 413 before any handler reads them).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sms_common.logging_setup import configure_logging, route_sanic_loggers

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5005
MAX_BODY_BYTES = 1_000_000
# Sanic (21.12, under Rasa) reads every SANIC_* variable into its config when the app is created.
BODY_LIMIT_VARIABLE = "SANIC_REQUEST_MAX_SIZE"

log = logging.getLogger("rasa_runtime.rasa_server")


class StartupError(Exception):
    """A setting that stops the server from starting; the message names the setting."""


@dataclass(frozen=True)
class RasaServerSettings:
    host: str
    port: int
    auth_token: str
    model: str
    endpoints: str
    credentials: str

    @classmethod
    def from_env(
        cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> RasaServerSettings:
        env = os.environ if environ is None else environ
        # Only file paths may come from the command line; secrets never do.
        parser = argparse.ArgumentParser(prog="python -m rasa_runtime.rasa_server")
        parser.add_argument("--model", default="models/waitlist.tar.gz")
        # RASA_ENDPOINTS picks another file: endpoints-replicas.yml for several Rasa servers
        parser.add_argument(
            "--endpoints", default=env.get("RASA_ENDPOINTS", "").strip() or "endpoints.yml"
        )
        parser.add_argument("--credentials", default="credentials.yml")
        args = parser.parse_args(argv)
        token = env.get("RASA_API_TOKEN", "").strip()
        if not token:
            raise StartupError(
                "RASA_API_TOKEN is not set: the Rasa HTTP API refuses to run without a token"
            )
        for label, path in (
            ("model", args.model),
            ("endpoints file", args.endpoints),
            ("credentials file", args.credentials),
        ):
            if not Path(path).is_file():
                raise StartupError(f"no {label} at {path}")
        return cls(
            host=env.get("RASA_HOST", "").strip() or DEFAULT_HOST,
            port=_port(env, "RASA_PORT", DEFAULT_PORT),
            auth_token=token,
            model=args.model,
            endpoints=args.endpoints,
            credentials=args.credentials,
        )


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StartupError(f"{name} must be a port number, got {raw!r}")
    return int(raw)


def limit_request_bodies(environ: MutableMapping[str, str]) -> None:
    """Cap request bodies at 1 MB unless SANIC_REQUEST_MAX_SIZE already says otherwise."""
    if not environ.get(BODY_LIMIT_VARIABLE, "").strip():
        environ[BODY_LIMIT_VARIABLE] = str(MAX_BODY_BYTES)


def serve(settings: RasaServerSettings, log_handler: logging.Handler | None = None) -> bool:
    """The steps of `rasa run` (rasa/__main__.py, rasa/cli/run.py, rasa/api.py), then serve.

    Returns whether the server ever listened: Sanic logs a failed bind and returns normally.
    """
    import rasa.telemetry
    import rasa.utils.tensorflow.environment as tf_env
    from rasa.core import constants
    from rasa.core.run import serve_application
    from rasa.core.utils import AvailableEndpoints
    from rasa.plugin import plugin_manager
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    # rasa/__main__.py, before any command (its coloredlogs handler is replaced by ours)
    configure_logging_and_warnings(None, None, warn_only_once=True, filter_repeated_logs=True)
    tf_env.setup_tf_environment()
    tf_env.check_deterministic_ops()
    sys.path.insert(1, os.getcwd())  # custom channels and components load from the project root
    rasa.telemetry.initialize_telemetry()
    rasa.telemetry.initialize_error_reporting()
    plugin_manager().hook.init_telemetry(endpoints_file=settings.endpoints)
    plugin_manager().hook.init_managers(endpoints_file=settings.endpoints)
    plugin_manager().hook.init_anonymization_pipeline(endpoints_file=settings.endpoints)
    configure_structlog(None)

    # rasa/api.py run(): endpoints are read (and ${VAR}s substituted) before serving
    endpoints = AvailableEndpoints.read_endpoints(settings.endpoints)
    # shared with forked workers (SANIC_WORKERS > 1 with a shared lock store)
    listened = multiprocessing.Value("b", 0)

    def note_listening(_app: object, _loop: object) -> None:
        listened.value = 1

    listeners: list[tuple[Callable[[object, object], None], str]] = [
        (note_listening, "after_server_start")
    ]
    if log_handler is not None:
        # Rasa's Sanic app replaces the handlers of Sanic's loggers when it is created; take
        # them back before the server logs anything (a failed bind, say).
        def keep_our_log_format(_app: object, _loop: object) -> None:
            route_sanic_loggers(log_handler)

        listeners.append((keep_our_log_format, "main_process_start"))
    serve_application(
        model_path=settings.model,
        channel=None,
        interface=settings.host,
        port=settings.port,
        credentials=settings.credentials,
        cors=None,
        auth_token=settings.auth_token,
        enable_api=True,
        response_timeout=constants.DEFAULT_RESPONSE_TIMEOUT,
        endpoints=endpoints,
        request_timeout=constants.DEFAULT_REQUEST_TIMEOUT,
        server_listeners=listeners,
    )
    return bool(listened.value)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = RasaServerSettings.from_env(argv)
    except StartupError as error:
        print(f"rasa server: {error}", file=sys.stderr)
        return 2
    # before Sanic is imported: its config reads SANIC_* when the app is created
    limit_request_bodies(os.environ)
    # the server never phones home unless told to
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    handler = configure_logging("rasa")
    from rasa.shared.exceptions import RasaException

    try:
        listened = serve(settings, handler)
    except RasaException as error:  # as `rasa` reports them: a message, no stack trace
        log.error("%s: %s", type(error).__name__, error)
        return 1
    if not listened:  # a supervisor must see a failed start as a failure
        log.error("the Rasa server never listened on %s:%s", settings.host, settings.port)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make run`: start the database, migrations, backend, action server, Rasa and the SMS simulator,
then keep them running: a process that dies is logged and restarted with backoff."""

from __future__ import annotations

import logging
import signal
import sys
import time

from launcher.secrets import apply_secrets_policy, exposure_reasons
from launcher.seed import seed_if_empty
from launcher.stack import ROOT, Stack, compose_env, prepare_database, rasa_db_settings
from launcher.supervisor import Supervisor

# exit code when the configuration is refused (secrets), as distinct from a failed start
REFUSED = 2


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "httpcore", "pgserver", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger("launcher")
    env = compose_env()
    data_dir = ROOT / env.get("DATA_DIR", ".data")
    problems = apply_secrets_policy(env, data_dir)
    if problems:
        # production: one line saying why, then one per variable (never a value)
        log.error("refusing to start a production set-up (%s):", "; ".join(exposure_reasons(env)))
        for problem in problems:
            log.error("  %s", problem)
        return REFUSED
    log.info(
        "preparing the database%s", "" if env.get("DATABASE_URL") else " (embedded, in .data/)"
    )
    env["DATABASE_URL"] = prepare_database(env)
    env.update(rasa_db_settings(env["DATABASE_URL"]))
    stack = Stack.build(env, data_dir / "logs")
    names = ["backend", "actions", "rasa"]
    if env.get("USE_SMS_SIMULATOR"):
        names.insert(0, "simulator")
    else:
        del stack.services["simulator"]

    def shutdown(*_: object) -> None:
        log.info("stopping...")
        stack.stop_all()
        sys.exit(0)

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    try:
        # a first start that fails is a configuration problem: report it rather than retry
        for name in names:
            log.info("starting %s (log: .data/logs/%s.log)", name, name)
            stack.start(name, timeout=300)
    except Exception as exc:
        log.error("%s", exc)
        stack.stop_all()
        return 1
    if seed_if_empty(env["BACKEND_URL"], env["STAFF_API_TOKEN"]):
        log.info("seeded a demo clinic: 2 providers, 20 waitlisted patients")
    log.info("")
    log.info("ready.")
    if env.get("USE_SMS_SIMULATOR"):
        log.info("  patient phone simulator: %s/", env["TWILIO_API_BASE_URL"])
    log.info("  staff API docs:          %s/docs", env["BACKEND_URL"])
    log.info("  staff console:           %s/", env["BACKEND_URL"])
    if env["STAFF_API_TOKEN"] == "dev-staff-token":
        log.info("  staff token:             dev-staff-token (set STAFF_API_TOKEN in production)")
    log.info("Press Ctrl-C to stop.")
    supervisor = Supervisor(stack, names)
    while True:
        supervisor.tick()
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())

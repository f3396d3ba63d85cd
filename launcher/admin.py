"""`make admin`: add a staff account to the database `make run` uses (the first admin, usually).

make admin                      # asks for a username and a password
make admin STAFF_USERNAME=maria ROLE=front_desk
"""

from __future__ import annotations

import sys

from launcher.stack import ROOT, compose_env, prepare_database


def main(argv: list[str]) -> int:
    env = compose_env()
    env["DATABASE_URL"] = prepare_database(env)
    sys.path.insert(0, str(ROOT / "backend"))
    from waitlist import cli
    from waitlist.config import Settings

    return cli.main(argv, Settings.from_env(env))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

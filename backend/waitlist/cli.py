"""Staff accounts from the command line, for the first admin:

    python -m waitlist users add USERNAME [--role admin|front_desk] [--password-stdin]
    python -m waitlist users list

The password is asked twice without echo, or read from standard input with --password-stdin (for
scripts). It uses DATABASE_URL, else the embedded database of `make run` under DATA_DIR.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from waitlist.adapters import database, migrations, orm
from waitlist.config import Settings
from waitlist.domain.model import DomainError
from waitlist.service_layer import accounts
from waitlist.service_layer.clock import SystemClock
from waitlist.service_layer.staff import Conflict
from waitlist.service_layer.unit_of_work import UnitOfWork


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m waitlist", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="area", required=True)
    users = commands.add_parser("users", help="staff accounts").add_subparsers(
        dest="command", required=True
    )
    add = users.add_parser("add", help="add a staff account")
    add.add_argument("username")
    add.add_argument("--role", choices=["admin", "front_desk"], default="front_desk")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    users.add_parser("list", help="list staff accounts")
    return parser


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password (12 characters or more): ")
    if getpass.getpass("again: ") != first:
        raise DomainError("the two passwords differ")
    return first


def _uow(settings: Settings) -> UnitOfWork:
    url = settings.database_url or database.start_embedded_postgres(settings.data_dir)
    migrations.upgrade(url)
    orm.start_mappers()
    return UnitOfWork(UnitOfWork.session_factory_for(database.create_engine(url)))


def main(argv: Sequence[str], settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings or Settings.from_env()
    try:
        if args.command == "add":
            password = _password(args.password_stdin)
            user = accounts.add_user(
                _uow(settings), args.username, password, args.role, SystemClock().now(), "cli"
            )
            print(f"added {user['role']} {user['username']} (id {user['id']})")
        else:
            offset: int | None = 0
            while offset is not None:  # every page: a clinic may have more users than one holds
                page = accounts.list_users(_uow(settings), 1000, offset)
                for user in page["items"]:
                    print(f"{user['id']:>4}  {user['role']:<10}  {user['username']}")
                offset = page["next"]
    except (DomainError, Conflict) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

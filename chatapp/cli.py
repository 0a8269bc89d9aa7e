"""`python -m chatapp`: serve (`--demo` seeds demo data), migrate, create-user, reset-password,
grant-admin, revoke-admin, deactivate, reactivate, invite, check, repair, export, import,
backup, restore and reindex.

Every failure to start is one line on stderr naming the cause, and exit code 2.

What only one command uses (backup, restore, check, export, the demo data) is
imported by that command: `serve` starts without loading it.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import getpass
import signal
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from chatapp.accounts import Accounts, Role, User
from chatapp.bootstrap import (
    CommandOutcome,
    build_app,
    migrate,
    run_accounts_command,
    run_operators_command,
)
from chatapp.bootstrap.collector import settle_collector_on_startup
from chatapp.bootstrap.open_files import fit_connections
from chatapp.bus.control_socket import ControlUnreachable
from chatapp.config import ConfigError, Settings, load_settings
from chatapp.errors import Refused, StartupRefused
from chatapp.observability import configure_logging
from chatapp.operators import Invite, Operators


def main(argv: Sequence[str] | None = None) -> int:
    # The entry points (`python -m chatapp`, run.py) import this module with the
    # garbage collector paused, which makes the import a sixth faster; from here
    # on it runs as usual.
    gc.enable()
    args = _parser().parse_args(argv)
    overrides = {key: getattr(args, key) for key in ("host", "port", "data_dir") if key in args}
    try:
        settings = load_settings(config_file=getattr(args, "config", None), overrides=overrides)
    except ConfigError as exc:
        print(f"chatapp: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    command = getattr(args, "command", None) or "serve"
    try:
        if command == "serve":
            return _serve(settings, demo=getattr(args, "demo", False))
        if command == "migrate":
            return asyncio.run(_migrate(settings))
        if command in ("check", "repair"):
            return _maintain(settings, command)
        if command in ("export", "import"):
            return asyncio.run(_transfer(settings, command, args.file))
        if command == "reindex":
            return asyncio.run(_reindex(settings))
        if command in ("backup", "restore"):
            return asyncio.run(_keep(settings, command, args))
        if command in ("grant-admin", "revoke-admin"):
            role: Role = "admin" if command == "grant-admin" else "member"
            return asyncio.run(_set_role(settings, args.username, role))
        if command in ("deactivate", "reactivate"):
            reason = getattr(args, "reason", None)
            return asyncio.run(_set_active(settings, args.username, command, reason))
        if command == "invite":
            return asyncio.run(_invite(settings, args))
        password = _read_password(args.password_stdin)
        if command == "create-user":
            role = "admin" if args.admin else "member"
            return asyncio.run(_create_user(settings, args.username, password, role))
        return asyncio.run(_reset_password(settings, args.username, password))
    except Refused as refusal:
        print(f"chatapp: {refusal.code}: {refusal.message}", file=sys.stderr)
        return 1
    except StartupRefused as refusal:  # a command's stores could not be opened
        print(f"chatapp: cannot {command}: {refusal}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS keeps an option given before the command from being reset by
    # the command's own (absent) copy of it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--config", type=Path, help="a TOML file of settings (see config/)")
    common.add_argument("--host", help="address to listen on")
    common.add_argument("--port", type=_port, help="port to listen on")
    common.add_argument("--data-dir", type=Path, help="folder for the databases")
    parser = argparse.ArgumentParser(prog="chatapp", parents=[common])
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", parents=[common], help="run the server (the default)")
    for accepting in (parser, serve):  # `chatapp --demo` and `chatapp serve --demo`
        accepting.add_argument(
            "--demo",
            action="store_true",
            default=argparse.SUPPRESS,
            help="seed demo users, friends, a group and history, and print the logins",
        )
    commands.add_parser("migrate", parents=[common], help="apply schema migrations and exit")
    commands.add_parser(
        "check", parents=[common], help="verify a stopped data folder whole (exit 1 if damaged)"
    )
    commands.add_parser(
        "repair",
        parents=[common],
        help="rebuild what a stopped data folder can derive, and say what was lost",
    )
    for name, text in (
        ("export", "write the whole stopped deployment to FILE as JSON lines"),
        ("import", "load FILE (made by export) into an empty deployment"),
    ):
        commands.add_parser(name, parents=[common], help=text).add_argument("file", type=Path)
    commands.add_parser(
        "reindex",
        parents=[common],
        help="make the search index again from the messages (a stopped data folder, or the"
        " cluster's database while nodes run)",
    )
    commands.add_parser(
        "backup",
        parents=[common],
        help="copy the data folder into the new folder DIR, consistent while the server"
        " serves, then check the copy (a cluster: use pg_dump)",
    ).add_argument("dir", type=Path, metavar="DIR")
    restore = commands.add_parser(
        "restore",
        parents=[common],
        help="bring the backup in DIR back into the stopped data folder (--force keeps what"
        " was there in DATA_DIR/before-restore-<time>)",
    )
    restore.add_argument("dir", type=Path, metavar="DIR")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace a data folder that holds data, moving it aside rather than deleting it",
    )
    for name, text in (("create-user", "create an account"), ("reset-password", "set a password")):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("username")
        command.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        if name == "create-user":
            command.add_argument(
                "--admin", action="store_true", help="make the account a server admin"
            )
    for name, text in (
        ("grant-admin", "make a user a server admin"),
        ("revoke-admin", "make an admin a member again"),
    ):
        commands.add_parser(name, parents=[common], help=text).add_argument("username")
    deactivate = commands.add_parser(
        "deactivate", parents=[common], help="refuse a user's logins and sign out every device"
    )
    deactivate.add_argument("username")
    deactivate.add_argument("--reason", help="why, for the audit log and the admin list")
    commands.add_parser(
        "reactivate", parents=[common], help="let a deactivated user log in again"
    ).add_argument("username")
    invite = commands.add_parser("invite", parents=[common], help="make and revoke invites")
    _invite_parser(invite, common)
    return parser


def _invite_parser(invite: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = invite.add_subparsers(dest="invite_action", required=True)
    create = actions.add_parser("create", parents=[common], help="make an invite code, print it")
    create.add_argument("--uses", type=int, default=1, help="how many signups it allows")
    create.add_argument("--expires-in", type=int, metavar="SECONDS", help="default: never")
    actions.add_parser("list", parents=[common], help="every invite not revoked")
    revoke = actions.add_parser("revoke", parents=[common], help="revoke an invite code")
    revoke.add_argument("code")


def _port(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {raw!r}") from None


def _serve(settings: Settings, *, demo: bool = False) -> int:
    # Past a file-size limit a write should fail (and the send be refused),
    # not kill the process with every connection in it.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        settings = fit_connections(settings)
        # Bound before anything is opened: a port in use refuses the start
        # before the stores are touched or `server_started` is logged.
        listening = _listen(settings.host, settings.port)
        app = build_app(settings)
        if demo:
            from chatapp.demo import seed_on_startup

            app.on_startup.append(seed_on_startup)
        # Last, so that what the other handlers open is frozen with the rest.
        app.on_startup.append(settle_collector_on_startup)
        web.run_app(
            app,
            sock=listening,
            print=None,
            access_log=None,
            handle_signals=True,
        )
    except StartupRefused as refusal:
        return _refuse(str(refusal))
    except OSError as failure:
        # What the stores and the key do not name themselves (the control
        # socket, a folder that cannot be made) still gets one line.
        where = f": {failure.filename}" if failure.filename else ""
        return _refuse(f"{failure.strerror or failure}{where}")
    return 0


def _refuse(reason: str) -> int:
    print(f"chatapp: cannot start: {reason}", file=sys.stderr)
    return 2


def _listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address `host` names, as aiohttp's own site would bind."""
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as failure:
        raise StartupRefused(f"cannot listen on {host}: {failure.strerror}") from None
    listening: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            listening.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
    except OSError as failure:
        for sock in listening:
            sock.close()
        if failure.errno == errno.EADDRINUSE:
            reason = "is in use by another process"
        else:
            reason = f"cannot be listened on ({failure.strerror})"
        raise StartupRefused(f"port {port} on {host} {reason}") from None
    return listening


def _maintain(settings: Settings, command: str) -> int:
    """`check` or `repair` of the data folder: 0 when whole, 1 when not, 2 when refused."""
    from chatapp.bootstrap.maintenance import FolderReport, check_folder, repair_folder

    act = check_folder if command == "check" else repair_folder
    try:
        report: FolderReport = asyncio.run(act(settings.data_dir))
    except StartupRefused as refusal:
        print(f"chatapp: cannot {command}: {refusal}", file=sys.stderr)
        return 2
    for line in report.lines:
        print(line)
    return 0 if report.whole else 1


async def _transfer(settings: Settings, command: str, path: Path) -> int:
    from chatapp.bootstrap.transfer import export_deployment, import_deployment

    if command == "export":
        progress = await export_deployment(settings, path)
        print(f"{progress.summary()} to {path}")
    else:
        progress = await import_deployment(settings, path)
        print(f"{progress.summary()} from {path}")
    return 0


async def _keep(settings: Settings, command: str, args: argparse.Namespace) -> int:
    """`backup DIR` or `restore DIR`: 0 done, 1 failed (the copy failed its check), 2 refused."""
    from chatapp.bootstrap.backup import BackupFailed, describe, take_backup
    from chatapp.bootstrap.restore import RestoreFailed, restore_backup

    try:
        if command == "backup":
            taken = await take_backup(settings, args.dir)
            print(
                f"backed up {taken.manifest['source']} into {taken.target}, taken by"
                f" {taken.manifest['taken_by']}: {describe(taken.manifest)}; checked whole"
            )
            for name, why in taken.manifest["not_copied"].items():
                print(f"not copied: {name}: {why}")
            return 0
        restored = await restore_backup(settings, args.dir, force=args.force)
    except (BackupFailed, RestoreFailed) as failure:
        print(f"chatapp: {command} failed: {failure}", file=sys.stderr)
        return 1
    manifest = restored.manifest
    print(
        f"restored {args.dir} (the backup of {manifest['source']} begun at"
        f" {manifest['began_at']}: {describe(manifest)}) into {restored.data_dir}"
    )
    if restored.aside is not None:
        print(f"what the folder held before is in {restored.aside}")
    return 0


async def _reindex(settings: Settings) -> int:
    from chatapp.bootstrap.search import reindex

    reindexed = await reindex(settings)
    print(reindexed.summary())
    return 0


async def _migrate(settings: Settings) -> int:
    applied = await migrate(settings)
    print(f"applied migrations: {applied or 'none (up to date)'}")
    return 0


async def _create_user(settings: Settings, username: str, password: str, role: Role) -> int:
    async def act(operators: Operators) -> User:
        return await operators.moderation.create_user(username, password, role)

    outcome = await run_operators_command(settings, act)
    user = outcome.result
    kind = "admin" if user.is_admin else "user"
    print(f"created {kind} {user.username} (user_id {user.user_id})")
    return 0


async def _set_role(settings: Settings, username: str, role: Role) -> int:
    async def act(operators: Operators) -> User:
        return await operators.moderation.set_role(username, role)

    # Nothing to relay: a running server reads the role from the store at every admin call.
    outcome = await run_operators_command(settings, act)
    user = outcome.result
    now = "an admin" if user.is_admin else "a member, not an admin"
    print(f"{user.username} (user_id {user.user_id}) is now {now}, on a running server too")
    return 0


async def _reset_password(settings: Settings, username: str, password: str) -> int:
    async def act(accounts: Accounts) -> User:
        return await accounts.set_password(username, password)

    try:
        outcome: CommandOutcome[User] = await run_accounts_command(settings, act)
    except ControlUnreachable as failure:
        print(
            f"chatapp: the password is set, but the running server did not hear of it"
            f" ({failure}); its open connections of this user stay open until it restarts",
            file=sys.stderr,
        )
        return 1
    where = "; the running server closed their connections" if outcome.server_told else ""
    print(f"password set for {outcome.result.username}; its devices must log in again{where}")
    return 0


async def _set_active(settings: Settings, username: str, command: str, reason: str | None) -> int:
    """`deactivate` (every device revoked, on the running server too) or `reactivate`."""

    async def act(operators: Operators) -> User:
        if command == "deactivate":
            return await operators.moderation.deactivate_named(username, reason)
        return await operators.moderation.reactivate_named(username)

    try:
        outcome = await run_operators_command(settings, act)
    except ControlUnreachable as failure:
        print(
            f"chatapp: {username} is deactivated, but the running server did not hear of it"
            f" ({failure}); its open connections of this user stay open until it restarts",
            file=sys.stderr,
        )
        return 1
    user = outcome.result
    if command == "reactivate":
        print(f"{user.username} (user_id {user.user_id}) is active; its devices log in anew")
        return 0
    where = "; the running server closed their connections" if outcome.server_told else ""
    print(f"{user.username} (user_id {user.user_id}) is deactivated: logins are refused and"
          f" every device is signed out{where}")  # fmt: skip
    return 0


async def _invite(settings: Settings, args: argparse.Namespace) -> int:
    """`invite create`, `invite list` or `invite revoke CODE`: read by a running server at its
    next signup, so nothing needs relaying."""

    async def act(operators: Operators) -> list[Invite]:
        if args.invite_action == "create":
            made = await operators.invites.create(
                actor_id=None, uses=args.uses, expires_in_s=args.expires_in
            )
            return [made]
        if args.invite_action == "revoke":
            await operators.invites.revoke(args.code, actor_id=None)
            return []
        return await operators.invites.list_invites()

    invites = (await run_operators_command(settings, act)).result
    if args.invite_action == "revoke":
        print(f"revoked invite {args.code}")
    elif args.invite_action == "list" and not invites:
        print("no invites")
    for invite in invites:
        print(_invite_line(invite))
    return 0


def _invite_line(invite: Invite) -> str:
    uses = f"{invite.uses_left} use{'' if invite.uses_left == 1 else 's'} left"
    expires = "never" if invite.expires_at is None else _when(invite.expires_at)
    by = "the command line" if invite.created_by is None else f"user_id {invite.created_by}"
    return f"{invite.code}  {uses}, expires {expires}, made {_when(invite.created_at)} by {by}"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("password: ")
    if password != getpass.getpass("again: "):
        raise SystemExit("chatapp: the passwords differ")
    return password


if __name__ == "__main__":
    sys.exit(main())

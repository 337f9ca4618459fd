"""The command line of `python -m bot` and of the `nekocord` script (the same parser).

    nekocord [run]           run the bot (the default)
    nekocord migrate-store   copy a SQLite database into PostgreSQL (`bot.store.migrate`)
    nekocord check-config    the settings as the bot reads them, and what answers
    nekocord --version | --help

Settings come from the environment and `.env`, never from options. An unknown command or
option exits 2 with the usage on stderr (argparse's convention). A new command is one more
entry in `COMMANDS` (a `web` command is expected).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from bot import __version__

__all__ = ["COMMANDS", "build_parser", "main"]


def _run(extra: list[str]) -> int:
    from bot.__main__ import run_bot  # the bot itself: imported only to run it

    return run_bot()


def _migrate_store(extra: list[str]) -> int:
    from bot.store import migrate

    return migrate.main(extra)  # its own options, usage and exit codes


def _check_config(extra: list[str]) -> int:
    from bot import check_config

    return check_config.main()


# name → (one-line help, handler, whether the handler parses its own options)
COMMANDS: dict[str, tuple[str, Callable[[list[str]], int], bool]] = {
    "run": ("run the bot until SIGTERM/SIGINT (the default)", _run, False),
    "migrate-store": (
        "copy a SQLite database into an empty PostgreSQL database (--from, --to)",
        _migrate_store,
        True,
    ),
    "check-config": (
        "print the settings (secrets redacted) and whether the database, Discord and "
        "nekos.best answer; exit 0 all good, 1 unreachable, 2 invalid",
        _check_config,
        False,
    ),
}


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="nekocord: a self-hostable Discord bot for nekos.best. Settings are read "
        "from the environment and .env (see the README's configuration table).",
    )
    parser.add_argument("--version", action="version", version=f"nekocord {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (summary, _, own_options) in COMMANDS.items():
        # A command with options of its own gets them all (and --help) handed over.
        commands.add_parser(name, help=summary, description=summary, add_help=not own_options)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str | None = None,
    run: Callable[[], int] | None = None,
) -> int:
    """Parse `argv` (default: `sys.argv[1:]`) and run the command; returns the exit code.
    `run`: the bot's runner when the caller has it (`python -m bot`: its own module, which
    must not be imported a second time as `bot.__main__`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog or os.path.basename(sys.argv[0]) or "nekocord")
    parsed, extra = parser.parse_known_args(args)
    name = parsed.command or "run"
    _, handler, own_options = COMMANDS[name]
    if extra and not own_options:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")  # exits 2
    if name == "run" and run is not None:
        return run()
    return handler(extra)


def script() -> None:
    """The `nekocord` console script."""
    sys.exit(main(prog="nekocord"))

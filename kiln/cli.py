"""The ``kiln`` command: serve, status, config check, journal audit, sign, token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from kiln import __version__

if TYPE_CHECKING:  # the commands import what they need when they run: ``kiln token`` loads no server
    from kiln.config import ServerConfig


def _setup_logging(level: str) -> None:
    from kiln.log_writer import QueuedLogWriter

    root = logging.getLogger()
    if not root.handlers:  # as basicConfig: a process that set up logging already keeps its own
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        try:  # written by a thread of its own: a stderr nobody reads must not stop the event loop or an actor
            handler: logging.Handler = QueuedLogWriter(sys.stderr.fileno(), formatter)
        except (AttributeError, ValueError, OSError):  # a stderr with no descriptor (embedded, captured)
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(formatter)
        root.addHandler(handler)
        root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # every uvicorn server (API, API TLS, LL-HLS, thumbnails) would log its own "Started server
    # process"; Kiln logs one line per listener itself
    logging.getLogger("uvicorn.error").setLevel(max(logging.WARNING, logging.getLogger().level))
    # hypercorn (the LL-HLS TLS port) would add "Running on ... (CTRL + C to quit)"; its HTTP/2 libraries
    # log every frame and header at DEBUG, which would drown Kiln's own debug lines
    logging.getLogger("hypercorn.error").setLevel(max(logging.WARNING, logging.getLogger().level))
    for name in ("h2", "hpack"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    from kiln.uvicorn_logging import install

    install()  # its WebSocket advice does not apply to Kiln


EVENT_LOOP_ENV = "KILN_EVENT_LOOP"
EVENT_LOOPS = ("uvloop", "asyncio")


def event_loop_choice(environ: Mapping[str, str] | None = None) -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The event loop ``kiln serve`` runs on, and why: uvloop (libuv) by default, because RTMP ingest and
    the player ports spend much of their CPU in the loop's socket reads, writes and timers, which libuv does
    in C; ``KILN_EVENT_LOOP=asyncio`` is the escape hatch back to the standard loop."""
    wanted = (os.environ if environ is None else environ).get(EVENT_LOOP_ENV, "").strip().lower() or "uvloop"
    if wanted not in EVENT_LOOPS:
        raise ValueError(f"{EVENT_LOOP_ENV}={wanted!r}: expected one of {', '.join(EVENT_LOOPS)}")
    if wanted == "uvloop":
        from importlib.metadata import version

        import uvloop

        return f"uvloop version={version('uvloop')}", uvloop.new_event_loop
    return "asyncio", asyncio.new_event_loop


def _load_config(path: str | None) -> tuple[ServerConfig, str]:
    from kiln.config import load_default_config, load_server_xml

    if path is None:
        return load_default_config(), "(embedded default)"
    return load_server_xml(path), str(Path(path).resolve())


def cmd_serve(args: argparse.Namespace) -> int:
    from kiln.config import ConfigLoadError
    from kiln.journal import JournalCorruptError
    from kiln.media.threadname import name_threads_as_they_start
    from kiln.service import KilnService

    name_threads_as_they_start()  # before the first thread (the log writer's) starts
    _setup_logging(args.log_level)
    log = logging.getLogger("kiln")
    from kiln.compiled import log_startup

    log_startup(log)
    try:
        loop_name, loop_factory = event_loop_choice()
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    try:
        config, name = _load_config(args.config)
    except ConfigLoadError as exc:
        log.error("configuration error: %s", exc)
        return 2
    from kiln.config.templates import dynamic_app_warnings
    from kiln.config.unimplemented import unimplemented_warnings

    for warning in [*config.warnings, *unimplemented_warnings(config), *dynamic_app_warnings(config)]:
        log.warning("configuration %s", warning)
    service = KilnService(config, Path(args.data_dir), config_name=name)
    try:
        service.open()
    except JournalCorruptError as exc:
        log.error("%s (run 'kiln journal verify -d %s'; startup stopped, nothing was modified)", exc,
                  args.data_dir)
        return 3
    except ConfigLoadError as exc:  # found only against the journal, e.g. a subscription id the API made
        log.error("configuration error: %s", exc)
        service.close()
        return 2
    from kiln.collector import tune_for_serving

    tune_for_serving()
    try:
        host = "0.0.0.0" if config.ip in ("*", "") else config.ip
        log.info("event loop=%s (set %s=asyncio for the standard loop)", loop_name, EVENT_LOOP_ENV)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(service.serve(host, config.bind.api_port))
    except OSError as exc:
        log.error("%s", exc)
        return 4
    finally:
        service.close()
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from kiln.config.check import run_check

    return run_check(args.file, sys.stdout)


def cmd_journal(args: argparse.Namespace, rest: list[str]) -> int:
    from kiln.journal.cli import run

    return run(rest)


def cmd_token(args: argparse.Namespace) -> int:
    from kiln.service import TOKEN_FILE

    path = Path(args.data_dir) / TOKEN_FILE
    if not path.exists():
        sys.stderr.write(f"no generated token at {path} (it is created by the first 'kiln serve')\n")
        return 1
    sys.stdout.write(path.read_text())
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from kiln.admission.sign_cli import run
    from kiln.config import ConfigLoadError

    try:
        config, _name = _load_config(args.config)
    except ConfigLoadError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return run(args, config.vhosts, sys.stdout, sys.stderr)


def cmd_status(args: argparse.Namespace) -> int:
    from kiln.status_cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiln", description="OvenMediaEngine-compatible streaming server")
    parser.add_argument("--version", action="version", version=f"kiln {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("-c", "--config", help="OME Server.xml (default: the embedded default)")
    serve.add_argument("-d", "--data-dir", default="data", help="journal, snapshots, token, recordings")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)
    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a Server.xml and print what Kiln will run")
    check.add_argument("file", nargs="?", help="Server.xml (default: the embedded default)")
    check.set_defaults(func=cmd_config_check)
    sub.add_parser("journal", help="audit the event journal: show|tail|stats|verify (see 'kiln journal -h')",
                   add_help=False)
    from kiln.admission.sign_cli import add_arguments as sign_arguments

    sign = sub.add_parser("sign", help="print a URL signed with a vhost's SignedPolicy key")
    sign_arguments(sign)
    sign.set_defaults(func=cmd_sign)
    status = sub.add_parser("status", help="one screen of what a running Kiln does (asks its API)")
    status.add_argument("-d", "--data-dir", default="data", help="the running server's data directory")
    status.add_argument("-c", "--config", help="Server.xml, when its Managers/API/AccessToken sets the token")
    status.add_argument("--json", action="store_true", help="print what the API answered as one JSON object")
    status.set_defaults(func=cmd_status)
    token = sub.add_parser("token", help="print the generated API access token")
    token.add_argument("-d", "--data-dir", default="data")
    token.set_defaults(func=cmd_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "journal":
        return cmd_journal(argparse.Namespace(), argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

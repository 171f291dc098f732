"""The command line: the agent itself and its helper commands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from agent import __version__
from agent.paths import default_config_path, default_data_dir, ensure_private_dir

logger = logging.getLogger(__name__)

#: The most companies a sandbox console holds; more only slows the start.
MAX_SANDBOX_TENANTS = 10_000


def int_in_range(low: int, high: int, *, zero: bool = False) -> Callable[[str], int]:
    """An argparse type: a whole number from low to high (or 0 when ``zero``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' is not a whole number"
            ) from None
        if (zero and value == 0) or low <= value <= high:
            return value
        extra = " (or 0 for any free port)" if zero else ""
        raise argparse.ArgumentTypeError(
            f"{value} is out of range: use {low} to {high}{extra}"
        )

    return parse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help only where it tells something."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        """The help, with the default added unless it says its own or has none."""
        text = action.help or ""
        # None and False mean "not given"; a help that names its default in words
        # ("default: beside the program") would otherwise get a second one.
        if action.default in (None, False) or "default" in text:
            return action.help
        return super()._get_help_string(action)


def add_common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--config and --data-dir, accepted before or after a subcommand.

    A subcommand's copy defaults to "not given", so that the value given before the
    subcommand is not overwritten by the subcommand's default.
    """
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help="the IntegrationUI.exe.config file (default: beside the program)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        help="where the database, logs, agent.json and sandbox.json live "
        "(default: the platform's per-user data folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``integration-agent`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="integration-agent",
        description="Keeps Tigerpaw in step with Kaspersky Security Center and "
        "Kaspersky Business Hub. Without a command it runs the agent.",
        formatter_class=HelpFormatter,
    )
    add_common_options(parser, top=True)
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="start built-in emulators of KSC, Business Hub and Tigerpaw to try the "
        "agent without real servers",
    )
    parser.add_argument(
        "--headless", action="store_true", help="run without a tray icon"
    )
    parser.add_argument(
        "--port",
        type=int_in_range(1024, 65535, zero=True),
        default=None,
        help="the page's port (default: WebPort of the config file)",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open the setup page in a browser at start",
    )
    parser.add_argument(
        "--sandbox-tenants",
        type=int_in_range(1, MAX_SANDBOX_TENANTS),
        default=5,
        help="companies per emulated console with --sandbox",
    )

    commands = parser.add_subparsers(dest="command", metavar="command")
    sandbox = commands.add_parser(
        "sandbox",
        help="run only the emulators",
        description="Run the emulated KSC, Business Hub and Tigerpaw servers alone, "
        "printing their addresses and test credentials (also in sandbox.json).",
        formatter_class=HelpFormatter,
    )
    add_common_options(sandbox, top=False)
    sandbox.add_argument(
        "--tenants",
        type=int_in_range(1, MAX_SANDBOX_TENANTS),
        default=5,
        help="companies per console",
    )
    sandbox.add_argument(
        "--seed",
        type=int,
        default=1,
        help="seed of the test data (same seed, same data)",
    )
    sandbox.add_argument(
        "--devices",
        type=int_in_range(1, 100_000),
        default=None,
        help="devices per company (default: from 6 to 30, varying)",
    )

    check = commands.add_parser(
        "check-config",
        help="validate a config file",
        description="Validate a config file: each error names its line and key. "
        "Exit code 0 when the file is good, 1 when it is not.",
    )
    add_common_options(check, top=False)
    check.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=None,
        help="the file to check (default: the --config file)",
    )

    once = commands.add_parser(
        "sync-once",
        help="run one full sync cycle, then exit",
        description="Run one cycle (billing and service orders) of every integration, "
        "or of the one named, and print what happened. Exit code 0 when everything "
        "synced, 1 when something failed, 2 for an unknown integration name.",
    )
    add_common_options(once, top=False)
    once.add_argument("--integration", metavar="NAME", help="only this integration")
    once.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be written to Tigerpaw without writing it",
    )

    status = commands.add_parser(
        "status",
        help="show what the running agent reports",
        description="Print the running agent's status: its page, the sync, and for "
        "each integration a summary and the servers or companies that need action "
        "(an error, no Tigerpaw account, billing to approve). Exit code 0 when the "
        "agent answered, 1 when no agent runs with this data folder or it did not "
        "answer.",
    )
    add_common_options(status, top=False)
    status.add_argument(
        "--json",
        action="store_true",
        help="print the status API's JSON instead, for scripts",
    )
    status.add_argument(
        "--all",
        action="store_true",
        help="list every server or company, not only those that need action",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    config_path = (args.config or default_config_path()).resolve()
    data_dir = ensure_private_dir((args.data_dir or default_data_dir()).resolve())

    if args.command == "sandbox":
        return run_sandbox(args, data_dir)
    if args.command == "check-config":
        from agent.config import check_config

        return check_config((args.path or config_path).resolve())
    if args.command == "status":
        return show_status(data_dir, as_json=args.json, every_tenant=args.all)
    if args.command == "sync-once":
        return run_sync_once_command(args, config_path, data_dir)
    return run_agent(args, config_path, data_dir)


def run_agent(args: argparse.Namespace, config_path: Path, data_dir: Path) -> int:
    """Start the agent and keep it running until Quit, Ctrl+C or SIGTERM."""
    from agent.app import Agent, AgentOptions
    from agent.errors import AgentError
    from agent.logs import setup_logging

    running = running_agent(data_dir)
    if running is not None:
        print(f"The agent is already running: {running['url']}")
        open_page(running["url"], args)
        return 0

    recent = setup_logging(data_dir)
    options = AgentOptions(
        config_path=config_path,
        data_dir=data_dir,
        sandbox=args.sandbox,
        headless=args.headless or not has_display(),
        port=args.port,
        open_browser=not args.no_browser,
        sandbox_tenants=args.sandbox_tenants,
    )
    agent = Agent(options, recent)
    stop_on_signals(agent.stop_event)
    try:
        agent.start()
    except AgentError as err:
        logger.error("%s", err)
        agent.stop()
        return 2

    if agent.sandbox_description:
        from agent.sandbox.runner import credentials_text

        print(credentials_text(agent.sandbox_description), flush=True)
        print(f"Details for scripts: {data_dir / 'sandbox.json'}", flush=True)
    print(f"Setup page: {agent.launch_url}", flush=True)
    open_page(agent.launch_url, args)

    from agent.tray import run_tray, watch_without_tray

    try:
        # The tray runs on the main thread (macOS requires it); without one, the
        # same notices go to the log and the page's banner.
        if not run_tray(agent, headless=args.headless):
            watcher = watch_without_tray(agent)
            try:
                agent.wait()
            finally:
                watcher.stop()
    finally:
        agent.stop()
    return 0


def run_sync_once_command(
    args: argparse.Namespace, config_path: Path, data_dir: Path
) -> int:
    """One sync cycle with the agent's config, store and secrets, then exit."""
    from agent.config import ConfigManager
    from agent.logs import setup_logging
    from agent.secrets import SecretStore
    from agent.store import Store
    from agent.sync.once import run_sync_once

    setup_logging(data_dir)
    config = ConfigManager(config_path)
    settings = config.load()
    if config.error is not None:
        print(f"Config problem, using the last good settings: {config.error}")
    register_sandbox_servers(data_dir)
    with Store.open_in(data_dir) as store:
        return run_sync_once(
            store,
            SecretStore(data_dir),
            settings,
            args.integration,
            args.dry_run,
        )


def register_sandbox_servers(data_dir: Path) -> None:
    """Let the Business Hub client reach a running sandbox of this data folder."""
    from agent.sources import kbh

    try:
        description = json.loads((data_dir / "sandbox.json").read_text("utf-8"))
        servers = description["kbh"]
    except (OSError, ValueError, KeyError):
        return
    kbh.register_servers(
        {name: (server["url"], server.get("cert")) for name, server in servers.items()}
    )


def run_sandbox(args: argparse.Namespace, data_dir: Path) -> int:
    """Run the emulators alone until Ctrl+C or SIGTERM."""
    from agent.errors import AgentError
    from agent.logs import setup_logging
    from agent.sandbox.runner import Sandbox, credentials_text

    setup_logging(data_dir)
    sandbox = Sandbox(
        data_dir, tenants=args.tenants, seed=args.seed, devices=args.devices
    )
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        description = sandbox.start()
    except AgentError as err:
        logger.error("%s", err)
        sandbox.stop()
        return 2
    print(credentials_text(description), flush=True)
    print(f"Details for scripts: {data_dir / 'sandbox.json'}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sandbox.stop()
    return 0


def show_status(
    data_dir: Path, *, as_json: bool = False, every_tenant: bool = False
) -> int:
    """Print what the running agent reports, in words or as JSON; 1 when none runs
    or it does not answer."""
    running = running_agent(data_dir)
    if running is None:
        print(
            f"No agent is running with the data folder {data_dir}: start it with "
            "integration-agent (give the same --data-dir if you chose one)."
        )
        return 1

    base = running["url"].split("/?")[0]
    try:
        reply = requests.get(
            base + "/api/status",
            headers={"Authorization": f"Bearer {running['token']}"},
            timeout=10,
        )
        status = reply.json()
    except (requests.RequestException, ValueError) as err:
        print(f"The agent at {base} did not answer: {err}. Try again.")
        return 1
    if not reply.ok:
        print(f"The agent refused the status request: {status.get('error', '')}")
        return 1

    if as_json:
        text = json.dumps(status, indent=2)
    else:
        from agent.web.dashboard import status_text

        text = status_text(
            status,
            url=running["url"],
            pid=running.get("pid"),
            every_tenant=every_tenant,
        )
    return print_to_pipe(text)


def print_to_pipe(text: str) -> int:
    """Print ``text``; a reader that stops early (``| head``) ends it quietly."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit and would complain a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


def running_agent(data_dir: Path) -> dict[str, Any] | None:
    """The ``agent.json`` of an agent that runs and answers, if there is one."""
    path = data_dir / "agent.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        base = str(info["url"]).split("/?")[0]
        reply = requests.get(
            f"{base}/api/status",
            headers={"Authorization": f"Bearer {info['token']}"},
            timeout=2,
        )
    except (OSError, ValueError, KeyError, requests.RequestException):
        return None
    return info if reply.ok else None


def has_display() -> bool:
    """Whether a desktop session is there to show a tray icon and a browser."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_page(url: str, args: argparse.Namespace) -> None:
    """Open the page in the desktop's browser, unless told not to or there is none."""
    if getattr(args, "no_browser", False) or getattr(args, "headless", False):
        return
    if not has_display():
        # Without a desktop, webbrowser would start a text browser in this terminal.
        return
    webbrowser.open(url)


def stop_on_signals(stop: threading.Event) -> None:
    """Let Ctrl+C and SIGTERM ask for a clean stop."""

    def request_stop(signum: int, _frame: object) -> None:
        logger.info("Stopping (signal %s)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

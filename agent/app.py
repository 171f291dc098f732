"""Builds every part of the agent from the settings, starts and stops them in order."""

from __future__ import annotations

import collections
import datetime as dt
import gc
import itertools
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.config import ConfigManager, Settings
from agent.errors import AgentError, ConfigError
from agent.logs import RecentRecords, log_file_path, set_level, set_max_file_kb
from agent.paths import write_json_atomically
from agent.secrets import SecretStore
from agent.setup_flow import SetupService
from agent.sources import kbh
from agent.store import Store, Tenant
from agent.sync.scheduler import Scheduler
from agent.web.server import WebServer

if TYPE_CHECKING:
    from agent.sandbox.runner import Sandbox

logger = logging.getLogger(__name__)

AGENT_FILE = "agent.json"
PORT_SEARCH_SPAN = 20

#: How long the page's banner shows a notice: problems a day, news ten minutes.
NOTICE_PROBLEMS = {
    "setup_needed": dt.timedelta(days=1),
    "config_error": dt.timedelta(days=1),
    "tenant_failing": dt.timedelta(days=1),
}
NOTICE_NEWS_LASTS = dt.timedelta(minutes=10)

#: The banner's colour per kind: problems red, things to do amber, news blue.
NOTICE_LEVELS = {
    "setup_needed": "warning",
    "config_error": "error",
    "tenant_failing": "error",
    "unreachable": "error",
    "folder_not_opened": "warning",
}

#: Kinds that speak of the same thing: the newest of a topic replaces the older.
NOTICE_TOPICS = {
    "config_error": "config",
    "config_fixed": "config",
    "setup_needed": "setup",
    "new_service_orders": "orders",
}


def notice_level(kind: str) -> str:
    """``error``, ``warning`` or ``info``: how a notice's banner looks."""
    return NOTICE_LEVELS.get(kind, "info")


def notice_topic(notice: dict[str, str]) -> str:
    """What a notice is about; a failing and a recovered tenant share a topic."""
    kind = notice["kind"]
    if kind in NOTICE_TOPICS:
        return NOTICE_TOPICS[kind]
    if kind in ("tenant_failing", "tenant_recovered"):
        return "tenant:" + notice["title"].partition(" for ")[2]
    if kind in ("unreachable", "reachable_again"):
        title = notice["title"].removesuffix(" is unreachable")
        return "reach:" + title.removesuffix(" answers again")
    return "title:" + notice["title"]


@dataclass(frozen=True)
class AgentOptions:
    """What the command line chose."""

    config_path: Path
    data_dir: Path
    sandbox: bool = False
    headless: bool = False
    port: int | None = None
    open_browser: bool = True
    sandbox_tenants: int = 5
    sandbox_seed: int = 1


class Agent:
    """The running agent: config, store, sandbox, sync and page."""

    def __init__(self, options: AgentOptions, recent_log: RecentRecords) -> None:
        self.options = options
        self.recent_log = recent_log
        self.token = secrets.token_urlsafe(32)
        self.stop_event = threading.Event()
        self.config = ConfigManager(options.config_path)
        self.store: Store | None = None
        self.secrets: SecretStore | None = None
        self.sandbox: Sandbox | None = None
        self.sandbox_description: dict[str, Any] = {}
        self.web: WebServer | None = None
        self.scheduler: Scheduler | None = None
        self.setup = SetupService(self)
        #: Messages a person must act on, newest last, for the page's banner and tray.
        self.notices: collections.deque[dict[str, str]] = collections.deque(maxlen=20)
        self._notice_ids = itertools.count(1)
        #: Ids of the news a person dismissed from the banner.
        self._dismissed: set[str] = set()

    # Lifecycle.

    def start(self) -> None:
        """Start the parts in order: config, store and secrets, sandbox, sync, page."""
        settings = self._start_config()
        self.store = Store.open_in(self.options.data_dir)
        self.secrets = SecretStore(self.options.data_dir)
        if self.options.sandbox:
            self._start_sandbox()
        self._start_sync(self.store, self.secrets)
        self._start_page(settings)
        # What was built while starting lives as long as the agent: keep it out of
        # the garbage collector's full passes, which otherwise walk it on every page.
        gc.freeze()

    def _start_config(self) -> Settings:
        settings = self.config.load()
        set_level(settings.log_level)
        set_max_file_kb(settings.max_log_file_kb)
        self.config.subscribe(self._settings_changed)
        self.config.subscribe_errors(self._config_error_changed)
        self.config.start()
        return settings

    def _start_sandbox(self) -> None:
        # Imported here: the emulators cost an agent that runs without them about
        # 4 MB of resident memory.
        from agent.sandbox.runner import Sandbox

        self.sandbox = Sandbox(
            self.options.data_dir,
            tenants=self.options.sandbox_tenants,
            seed=self.options.sandbox_seed,
        )
        self.sandbox_description = self.sandbox.start()
        kbh.register_servers(
            {
                environment: (server["url"], server["cert"])
                for environment, server in self.sandbox_description["kbh"].items()
            }
        )

    def _start_sync(self, store: Store, secrets: SecretStore) -> None:
        # The tray (or, headless, its status watcher) turns the scheduler's view of
        # failing tenants into notices, so the scheduler itself notifies no one.
        self.scheduler = Scheduler(store, secrets, lambda: self.config.settings)
        self.config.subscribe(self.scheduler.settings_changed)
        self.scheduler.start()

    def _start_page(self, settings: Settings) -> None:
        fixed = self.options.port is not None
        port = self.options.port if self.options.port is not None else settings.web_port
        self.web = WebServer(self, pick_port(port, fixed=fixed))
        self.web.start()
        self._write_agent_file()
        # The launch token stays out of the log: agent.json (owner only) holds it.
        logger.info("Setup page listening on %s", self.web.url)

    def wait(self) -> None:
        """Block until Quit or a signal asks the agent to stop."""
        while not self.stop_event.wait(1.0):
            pass

    def stop(self) -> None:
        """Stop the parts in reverse order, each within a time limit."""
        self.stop_event.set()
        if self.scheduler is not None and not self.scheduler.stop(timeout=10):
            logger.warning(
                "A sync cycle did not stop within 10 s; its writes stay queued"
            )
        if self.web is not None:
            self.web.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
            kbh.clear_registered_servers()
        self.config.stop()
        if self.store is not None:
            self.store.close()
        (self.options.data_dir / AGENT_FILE).unlink(missing_ok=True)
        logger.info("Agent stopped")

    # What the parts ask of the agent.

    def show_banner(self, kind: str, title: str, message: str) -> None:
        """Keep a notice for the page's banner: something a person must act on."""
        self.notices.append(
            {
                "id": str(next(self._notice_ids)),
                "kind": kind,
                "level": notice_level(kind),
                "title": title,
                "message": message,
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )

    def dismiss_notice(self, notice_id: str) -> bool:
        """Hide a piece of news from the banner; problems stay until they end."""
        for notice in list(self.notices):
            if notice.get("id") == notice_id and notice["level"] == "info":
                self._dismissed.add(notice_id)
                return True
        return False

    def current_notices(
        self, limit: int = 3, *, setup_page: bool = False
    ) -> list[dict[str, str]]:
        """The newest notices that still apply, newest first, for the page's banner.

        A "setup needed" notice ends with the first integration (and is not shown
        on the setup pages, which are what it asks for); a config error ends when
        the file is good again; news shows for ten minutes or until dismissed,
        problems for a day; of notices on one topic only the newest shows.
        """
        set_up = bool(self.store and self.store.list_integrations())
        now = dt.datetime.now(dt.UTC)
        kept: list[dict[str, str]] = []
        topics: set[str] = set()
        for notice in reversed(list(self.notices)):
            kind = notice["kind"]
            topic = notice_topic(notice)
            if topic in topics:
                continue
            topics.add(topic)

            lasts = NOTICE_PROBLEMS.get(kind, NOTICE_NEWS_LASTS)
            if kind == "setup_needed" and (set_up or setup_page):
                continue
            if kind == "config_error" and self.config.error is None:
                continue
            if notice.get("id") in self._dismissed:
                continue
            if dt.datetime.fromisoformat(notice["at"]) < now - lasts:
                continue
            kept.append(notice)
        return kept[:limit]

    def log_folder(self) -> Path:
        """The folder that holds the log files."""
        return log_file_path(self.options.data_dir).parent

    def about(self) -> dict[str, str]:
        """Version, config file and data folder, for the tray's About."""
        return {
            "version": __version__,
            "config_path": str(self.options.config_path),
            "data_folder": str(self.options.data_dir),
        }

    def sync_now(self, integration_id: str | None = None) -> None:
        """Start a cycle now (of one integration, or of all)."""
        if self.scheduler is not None:
            self.scheduler.sync_now(integration_id)

    def pause(self) -> None:
        """Stop starting cycles until resumed."""
        if self.scheduler is not None:
            self.scheduler.pause()

    def resume(self) -> None:
        """Start cycles on schedule again."""
        if self.scheduler is not None:
            self.scheduler.resume()

    def quit(self) -> None:
        """Ask the agent to stop, as the tray's Quit does."""
        self.stop_event.set()

    @property
    def launch_url(self) -> str:
        """The page's address with the launch token, as the tray opens it."""
        assert self.web is not None
        return f"{self.web.url}/?token={self.token}"

    def status(self) -> dict[str, Any]:
        """The status API's reply: version, config, sync and integrations."""
        error = self.config.error
        return {
            "version": __version__,
            "config": {
                "path": str(self.options.config_path),
                "ok": error is None,
                "error": describe_config_error(error),
                "settings": self.config.settings.as_dict(),
            },
            "page": {
                "url": self.web.url if self.web else None,
                "port": self.web.port if self.web else None,
            },
            "sync": (
                self.scheduler.status()
                if self.scheduler
                else {"state": "idle", "last_run": None, "next_run": None}
            ),
            "notices": list(self.notices),
            "integrations": self._integrations_status(),
            "secrets": {
                "backend": self.secrets.backend_name if self.secrets else None,
                "fallback": bool(self.secrets and self.secrets.is_fallback),
            },
            "sandbox": bool(self.sandbox),
        }

    def _integrations_status(self) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        integrations = []
        for integration in self.store.list_integrations():
            tenants = self.store.list_tenants(integration.id)
            integrations.append(
                {
                    "id": integration.id,
                    "name": integration.name,
                    "source": integration.source,
                    "tenants": [tenant_status(tenant) for tenant in tenants],
                }
            )
        return integrations

    # Reactions to config changes.

    def _settings_changed(self, old: Settings, new: Settings) -> None:
        if old.log_level != new.log_level:
            set_level(new.log_level)
        if old.max_log_file_kb != new.max_log_file_kb:
            set_max_file_kb(new.max_log_file_kb)
        serving = self.web.port if self.web else None
        if old.web_port != new.web_port and new.web_port != serving:
            logger.info(
                "WebPort changed to %s: the page stays on port %s until the agent "
                "restarts",
                new.web_port,
                serving,
            )

    def _config_error_changed(self, error: ConfigError | None) -> None:
        if error is None:
            logger.info("The config file is good again")

    def _write_agent_file(self) -> None:
        assert self.web is not None
        write_json_atomically(
            self.options.data_dir / AGENT_FILE,
            {
                "pid": os.getpid(),
                "url": self.launch_url,
                "port": self.web.port,
                "token": self.token,
            },
        )


def tenant_status(tenant: Tenant) -> dict[str, Any]:
    """A tenant as the status API shows it: its account, last sync and error."""
    mapping = tenant.mapping
    return {
        "id": tenant.id,
        "name": tenant.name,
        "account": (
            {"number": mapping.account_number, "name": mapping.account_name}
            if mapping
            else None
        ),
        "last_sync": tenant.last_sync_at.isoformat() if tenant.last_sync_at else None,
        "error": tenant.last_error,
    }


def describe_config_error(error: AgentError | None) -> dict[str, Any] | None:
    """A config error as JSON: its message, line and key."""
    if error is None:
        return None
    return {
        "message": str(error),
        "line": getattr(error, "line", None),
        "key": getattr(error, "key", None),
    }


def pick_port(preferred: int, *, fixed: bool = False) -> int:
    """The preferred port if free, else the next free one; a fixed port must be free.

    Port 0 lets the system choose any free port.
    """
    candidates = (
        [preferred] if fixed else range(preferred, preferred + PORT_SEARCH_SPAN)
    )
    for port in candidates:
        if port_is_free(port):
            if port != preferred:
                logger.warning(
                    "Port %s is taken; the page uses port %s", preferred, port
                )
            return port
    if fixed:
        raise AgentError(
            f"Port {preferred} on 127.0.0.1 is taken by another program: "
            "choose another with --port"
        )
    raise AgentError(
        f"Ports {preferred} to {preferred + PORT_SEARCH_SPAN - 1} are all taken: "
        "set WebPort in the config file to a free port"
    )


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be listened on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server itself will: a port left in TIME_WAIT by our own last run is
        # free to listen on again.
        if os.name != "nt":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

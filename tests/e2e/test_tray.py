"""The tray icon on a real X server with a real system tray, driven like a person.

Xvfb gives the screen, trayer the system tray (XEmbed), dunst the notifications on a
D-Bus session of the test's own (with no service activation, so nothing starts that
the test does not stop). xdotool clicks and types; ImageMagick's ``import`` takes
the screenshots, kept in test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from agent.tray.icons import COLOURS
from agent.tray.state import TrayState
from tests.agent_process import AgentProcess

pytestmark = [pytest.mark.xserver, pytest.mark.slow]

TOOLS = ["Xvfb", "trayer", "xdotool", "import", "dbus-daemon", "dbus-send", "dunst"]
SCREEN = (800, 600)
#: trayer sits at the top right, this wide and high.
TRAY_WIDTH, TRAY_HEIGHT = 120, 32

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={folder}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

BROWSER_SCRIPT = """#!/bin/sh
echo "$1" >> {record}
"""


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """The first true value of ``check`` within ``timeout`` seconds, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """How far apart two RGB colours are (sum of the channel differences)."""
    return sum(abs(x - y) for x, y in zip(a, b, strict=True))


class Processes:
    """Everything a fixture starts, stopped in reverse order at the end."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []
        self.logs: list[Any] = []

    def start(
        self, args: list[str], *, log: Path | None = None, **kwargs: Any
    ) -> subprocess.Popen:
        """Start a program in its own session; ``log`` takes its output."""
        if log is not None:
            handle = log.open("w")
            self.logs.append(handle)
            kwargs.update(stdout=handle, stderr=subprocess.STDOUT)
        process = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        """Stop every program, newest first, and close their logs."""
        for process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for handle in self.logs:
            handle.close()


class Screen:
    """An Xvfb display with trayer on it."""

    def __init__(self, display: str, folder: Path) -> None:
        self.display = display
        self.folder = folder

    def env(self) -> dict[str, str]:
        """The variables a program needs to reach this display."""
        return {**os.environ, "DISPLAY": self.display}

    def shot(self, path: Path | None = None) -> Image.Image:
        """A screenshot of the whole screen (saved to ``path`` when given)."""
        target = path or self.folder / "latest-shot.png"
        subprocess.run(
            ["import", "-display", self.display, "-window", "root", str(target)],
            check=True,
            timeout=10,
        )
        with Image.open(target) as image:
            return image.convert("RGB")

    def xdotool(self, *args: str) -> None:
        """Run xdotool on this display."""
        subprocess.run(["xdotool", *args], env=self.env(), check=True, timeout=10)

    def find_icon(self, state: TrayState) -> tuple[int, int] | None:
        """The centre of the tray icon drawn for ``state``, if the tray shows it."""
        image = self.shot()
        left = SCREEN[0] - TRAY_WIDTH - 10
        wanted = COLOURS[state]
        found = [
            (x, y)
            for x in range(left, SCREEN[0])
            for y in range(0, TRAY_HEIGHT + 4)
            if distance(image.getpixel((x, y)), wanted) < 40
        ]
        if len(found) < 20:
            return None
        xs, ys = [p[0] for p in found], [p[1] for p in found]
        return (min(xs) + max(xs)) // 2, (min(ys) + max(ys)) // 2


class Bus:
    """A D-Bus session of the test's own, optionally with dunst on it."""

    def __init__(self, address: str, folder: Path) -> None:
        self.address = address
        self.folder = folder
        self.monitor_log = folder / "notifications.txt"

    def has_owner(self, name: str) -> bool:
        """Whether a program on the bus owns ``name``."""
        reply = subprocess.run(
            [
                "dbus-send",
                f"--bus={self.address}",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                f"string:{name}",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return "boolean true" in reply.stdout

    def notifications(self, title: str) -> int:
        """How many notifications with this title were sent on the bus."""
        if not self.monitor_log.exists():
            return 0
        return self.monitor_log.read_text().count(f'string "{title}"')


@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Screen]:
    """Xvfb on a free display number, with trayer as the system tray."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"Install {missing} (./test.sh installs them as root)"
    folder = tmp_path_factory.mktemp("screen")
    processes = Processes()
    try:
        display = start_xvfb(processes, folder)
        screen = Screen(display, folder)
        processes.start(
            [
                "trayer",
                "--edge",
                "top",
                "--align",
                "right",
                "--widthtype",
                "pixel",
                "--width",
                str(TRAY_WIDTH),
                "--height",
                str(TRAY_HEIGHT),
            ],
            env=screen.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: tray_owner(display), 10, "trayer to own the tray")
        yield screen
    finally:
        processes.stop_all()


def start_xvfb(processes: Processes, folder: Path) -> str:
    """Start Xvfb on the first free display number above 90 and return it."""
    for number in range(91, 200):
        if Path(f"/tmp/.X{number}-lock").exists():
            continue
        if Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        process = processes.start(
            [
                "Xvfb",
                f":{number}",
                "-screen",
                "0",
                f"{SCREEN[0]}x{SCREEN[1]}x24",
                "-nolisten",
                "tcp",
            ],
            log=folder / "xvfb.txt",
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return f":{number}"
            time.sleep(0.05)
    raise AssertionError("No free display number for Xvfb")


def tray_owner(display: str) -> bool:
    """Whether a system tray owns the tray selection on ``display``."""
    import Xlib.display
    import Xlib.X

    connection = Xlib.display.Display(display)
    try:
        atom = connection.intern_atom("_NET_SYSTEM_TRAY_S0")
        return connection.get_selection_owner(atom) != Xlib.X.NONE
    finally:
        connection.close()


@pytest.fixture
def bus_factory(screen: Screen, tmp_path: Path) -> Iterator[Callable[[bool], Bus]]:
    """Make a D-Bus session; with ``True``, dunst serves notifications on it."""
    processes = Processes()

    def make(with_notifications: bool) -> Bus:
        """Start the bus (and dunst), with a monitor writing down notifications."""
        folder = tmp_path / "bus"
        folder.mkdir()
        config = folder / "session.conf"
        config.write_text(BUS_CONFIG.format(folder=folder))
        daemon = processes.start(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert daemon.stdout is not None
        bus = Bus(daemon.stdout.readline().strip(), folder)
        env = {**screen.env(), "DBUS_SESSION_BUS_ADDRESS": bus.address}
        processes.start(
            [
                "dbus-monitor",
                "--address",
                bus.address,
                "interface='org.freedesktop.Notifications',member='Notify'",
            ],
            log=bus.monitor_log,
        )
        if with_notifications:
            processes.start(
                ["dunst"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
            wait_until(
                lambda: bus.has_owner("org.freedesktop.Notifications"),
                10,
                "dunst on the bus",
            )
        return bus

    try:
        yield make
    finally:
        processes.stop_all()


def tray_agent(
    folder: Path, screen: Screen, bus: Bus, *args: str, backend: str = ""
) -> tuple[AgentProcess, Path]:
    """An agent on the test's screen and bus, with a browser that writes down URLs."""
    record = folder / "opened-urls.txt"
    browser = folder / "browser.sh"
    browser.write_text(BROWSER_SCRIPT.format(record=record))
    browser.chmod(0o755)
    agent = AgentProcess(
        folder,
        *args,
        env={
            "DISPLAY": screen.display,
            "DBUS_SESSION_BUS_ADDRESS": bus.address,
            "NO_AT_BRIDGE": "1",
            "PYSTRAY_BACKEND": backend,
            "BROWSER": f"{browser} %s",
        },
    )
    return agent, record


def wait_for_icon(screen: Screen, state: TrayState, timeout: float = 10) -> Any:
    """The centre of the icon once the tray shows it in ``state``."""
    return wait_until(lambda: screen.find_icon(state), timeout, f"a {state} icon")


def set_up_integration(agent: AgentProcess) -> None:
    """Finish setup as the setup page would: one integration on the sandbox's KSC."""
    from agent.store import Store
    from agent.store.records import IntegrationSettings

    sandbox = agent.sandbox_info()
    with Store.open_in(agent.data_dir) as store:
        store.create_integration(
            IntegrationSettings(
                source="ksc",
                name="Tray test",
                ksc_address=sandbox["ksc"]["url"],
                ksc_user=sandbox["ksc"]["user"],
                tigerpaw_url=sandbox["tigerpaw"]["url"],
                tigerpaw_asmx_url=sandbox["tigerpaw"]["asmx_url"],
                tigerpaw_soap_user=sandbox["tigerpaw"]["soap_user"],
                tigerpaw_public_key=sandbox["tigerpaw"]["public_key"],
            )
        )


def sync_started(agent: AgentProcess, before: dict[str, Any]) -> bool:
    """Whether a sync cycle ran or runs since the ``before`` status."""
    sync = agent.status()["sync"]
    return sync["state"] == "running" or sync.get("last_run") != before.get("last_run")


def test_icon_menu_sync_and_quit(
    screen: Screen, bus_factory: Callable[[bool], Bus], tmp_path: Path, artifacts_dir
) -> None:
    bus = bus_factory(True)
    agent, opened = tray_agent(tmp_path, screen, bus, "--sandbox")
    agent.start()
    try:
        wait_until(lambda: "Tray icon shown (gtk" in agent.output(), 10, "the icon")
        assert "notifications: desktop" in agent.output()

        # The icon in the tray: not set up yet, and one notification saying so.
        x, y = wait_for_icon(screen, TrayState.NOT_SET_UP)
        screen.shot(artifacts_dir / "1-not-set-up.png")
        wait_until(lambda: bus.notifications("Setup needed"), 5, "a notification")

        # A left click opens the page with the launch token.
        screen.xdotool("mousemove", str(x), str(y), "click", "1")
        url = agent.agent_info()["url"]
        wait_until(
            lambda: opened.exists() and url in opened.read_text(), 5, "the browser"
        )

        # Setup done: the icon turns OK.
        set_up_integration(agent)
        x, y = wait_for_icon(screen, TrayState.OK, timeout=5)
        screen.shot(artifacts_dir / "2-ok.png")

        # The menu opens on a right click; "Sync now" starts a sync.
        screen.xdotool("mousemove", str(x), str(y), "click", "3")
        time.sleep(0.7)
        screen.shot(artifacts_dir / "3-menu.png")
        before = agent.status()["sync"]
        screen.xdotool("key", "Down", "Down", "Return")
        wait_until(lambda: sync_started(agent, before), 15, "a sync to start")
        assert "Sync now chosen from the tray" in agent.output()

        # A broken config file shows on the icon within a second of the watcher.
        good = agent.config_path.read_text(encoding="utf-8")
        agent.config_path.write_text(good.replace('value="5"', 'value="0"'))
        wait_until(lambda: not agent.status()["config"]["ok"], 5, "the config error")
        seen = time.monotonic()
        wait_for_icon(screen, TrayState.ATTENTION, timeout=3)
        took = time.monotonic() - seen
        print(f"The icon showed the config error {took:.2f} s after the status did")
        assert took < 1.0
        screen.shot(artifacts_dir / "4-config-error.png")
        wait_until(lambda: bus.notifications("Config file error"), 5, "a notice")
        agent.config_path.write_text(good, encoding="utf-8")

        # Each notice once per change, never every poll.
        time.sleep(1.5)
        assert bus.notifications("Setup needed") == 1
        assert bus.notifications("Config file error") == 1

        # Quit from the menu ends the agent cleanly.
        x, y = wait_until(
            lambda: (
                screen.find_icon(TrayState.OK)
                or screen.find_icon(TrayState.ATTENTION)
                or screen.find_icon(TrayState.SYNCING)
            ),
            5,
            "the icon after the config fix",
        )
        screen.xdotool("mousemove", str(x), str(y), "click", "3")
        time.sleep(0.7)
        screen.xdotool("key", "Up", "Return")
        assert agent.process is not None
        assert agent.process.wait(30) == 0
        assert "Quit chosen from the tray" in agent.output()
        assert not (agent.data_dir / "agent.json").exists()
        screen.shot(artifacts_dir / "5-after-quit.png")
        assert screen.find_icon(TrayState.OK) is None
    finally:
        agent.stop()
        (artifacts_dir / "agent-output.txt").write_text(agent.output())


def test_no_notification_server_then_log_and_clean_quit(
    screen: Screen, bus_factory: Callable[[bool], Bus], tmp_path: Path, artifacts_dir
) -> None:
    bus = bus_factory(False)
    agent, _opened = tray_agent(tmp_path, screen, bus)
    agent.start()
    try:
        wait_until(lambda: "Tray icon shown (gtk" in agent.output(), 10, "the icon")
        assert "notifications: log and page" in agent.output()
        x, y = wait_for_icon(screen, TrayState.NOT_SET_UP)
        wait_until(
            lambda: "Setup needed: Open the setup page" in agent.output(), 5, "log"
        )

        screen.xdotool("mousemove", str(x), str(y), "click", "3")
        time.sleep(0.7)
        screen.shot(artifacts_dir / "menu-before-setup.png")
        screen.xdotool("key", "Up", "Return")
        assert agent.process is not None
        assert agent.process.wait(30) == 0, agent.output()
        assert agent.output().count("Setup needed: Open the setup page") == 1
    finally:
        agent.stop()
        (artifacts_dir / "agent-output.txt").write_text(agent.output())


def test_icon_without_menu_opens_the_page_on_click(
    screen: Screen, bus_factory: Callable[[bool], Bus], tmp_path: Path, artifacts_dir
) -> None:
    bus = bus_factory(False)
    agent, opened = tray_agent(tmp_path, screen, bus, "--sandbox", backend="xorg")
    agent.start()
    try:
        wait_until(lambda: "Tray icon shown (xorg" in agent.output(), 10, "the icon")
        assert "menu: none, a click opens the page" in agent.output()
        x, y = wait_for_icon(screen, TrayState.NOT_SET_UP)
        screen.shot(artifacts_dir / "xorg-icon.png")

        screen.xdotool("mousemove", str(x), str(y), "click", "1")
        url = agent.agent_info()["url"]
        wait_until(
            lambda: opened.exists() and url in opened.read_text(), 5, "the browser"
        )

        # The picture follows the state here too.
        set_up_integration(agent)
        wait_for_icon(screen, TrayState.OK, timeout=5)
        screen.shot(artifacts_dir / "xorg-icon-ok.png")
        assert agent.stop() == 0
    finally:
        agent.stop()
        (artifacts_dir / "agent-output.txt").write_text(agent.output())


def test_without_display_runs_headless_and_syncs(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path, "--sandbox")
    info = agent.start()
    try:
        base = str(info["url"]).split("/?")[0]
        wait_until(lambda: "Running without a tray icon" in agent.output(), 5, "log")
        assert agent.output().count("Running without a tray icon") == 1
        assert f"Running without a tray icon (no display); the page is at {base}/" in (
            agent.output()
        )

        set_up_integration(agent)
        before = agent.status()["sync"]
        reply = requests.post(
            f"{base}/api/sync",
            headers={"Authorization": f"Bearer {info['token']}"},
            timeout=5,
        )
        assert reply.status_code == 202, reply.text
        wait_until(lambda: sync_started(agent, before), 15, "a sync to start")
    finally:
        assert agent.stop() == 0


def test_headless_flag_wins_over_a_display(
    screen: Screen, bus_factory: Callable[[bool], Bus], tmp_path: Path
) -> None:
    bus = bus_factory(False)
    agent, _opened = tray_agent(tmp_path, screen, bus, "--headless")
    agent.start()
    try:
        wait_until(lambda: "Running without a tray icon" in agent.output(), 5, "log")
        assert "Running without a tray icon (--headless)" in agent.output()
        assert screen.find_icon(TrayState.NOT_SET_UP) is None
    finally:
        assert agent.stop() == 0

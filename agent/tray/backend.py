"""Finding a tray: which pystray backend fits this desktop, and whether a host is there.

pystray is imported only here and only when a tray is wanted: on Linux, importing it
with no display raises. On Linux the choice is ours, not pystray's: its own search
stops at the first backend that fails in an unexpected way (a missing AppIndicator
namespace raises ValueError), and GTK started without a D-Bus session launches a bus
daemon that outlives the agent.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

#: Where Debian keeps python3-gi; usable from a venv of the same Python version.
DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")

#: How long to wait at start for a tray host (a panel may come up after the agent).
TRAY_HOST_WAIT_S = 5.0

NOTIFICATIONS_NAME = "org.freedesktop.Notifications"
STATUS_NOTIFIER_WATCHER = "org.kde.StatusNotifierWatcher"


class NoTray(Exception):
    """No tray icon can be shown here; the message says why."""


@dataclass(frozen=True)
class Backend:
    """The pystray module, the backend it runs on and what that backend can do."""

    pystray: ModuleType
    name: str
    has_menu: bool
    has_default_action: bool
    has_notification: bool

    def notifications_work(self) -> bool:
        """Whether a notification shown now would reach the person."""
        if not self.has_notification:
            return False
        if self.name in ("gtk", "appindicator"):
            # pystray swallows a failed Notify; ask the bus whether anyone listens.
            return bus_name_available(NOTIFICATIONS_NAME)
        return True


def load_backend(wait_for_host: float = TRAY_HOST_WAIT_S) -> Backend:
    """Import pystray on a backend with a tray host, or raise NoTray saying why."""
    if sys.platform.startswith("linux"):
        name = os.environ.get("PYSTRAY_BACKEND") or choose_linux_backend()
        if name in ("gtk", "appindicator"):
            # A GTK backend named in PYSTRAY_BACKEND needs PyGObject too, which a
            # venv may only have from Debian's python3-gi.
            import_gi()
    else:
        name = os.environ.get("PYSTRAY_BACKEND") or ""
    pystray = import_pystray(name)
    backend_name = pystray.Icon.__module__.rsplit(".", 1)[-1].lstrip("_")

    wait_for_tray_host(backend_name, wait_for_host)
    icon_class = pystray.Icon
    return Backend(
        pystray=pystray,
        name=backend_name,
        has_menu=bool(icon_class.HAS_MENU),
        has_default_action=bool(icon_class.HAS_DEFAULT_ACTION),
        has_notification=bool(icon_class.HAS_NOTIFICATION),
    )


def choose_linux_backend() -> str:
    """appindicator, gtk or xorg: the richest one this session can run."""
    has_x = bool(os.environ.get("DISPLAY"))
    if not has_x and not os.environ.get("WAYLAND_DISPLAY"):
        raise NoTray("no display")

    gi = import_gi() if os.environ.get("DBUS_SESSION_BUS_ADDRESS") else None
    # pystray's GTK backends need the session bus from their first step on.
    if gi is not None and gi_has(gi, "Gtk", "3.0") and session_bus_answers():
        indicator = gi_has(gi, "AyatanaAppIndicator3", "0.1") or gi_has(
            gi, "AppIndicator3", "0.1"
        )
        if indicator and bus_name_available(STATUS_NOTIFIER_WATCHER):
            return "appindicator"
        if has_x:
            return "gtk"
    if has_x:
        return "xorg"
    raise NoTray("a Wayland session without AppIndicator support")


def import_gi() -> ModuleType | None:
    """PyGObject: the venv's own, or Debian's python3-gi when its build fits."""
    if "gi" in sys.modules:
        return sys.modules["gi"]
    try:
        import gi

        return gi
    except ImportError:
        pass

    folder = DEBIAN_DIST_PACKAGES / "gi"
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    if not any(folder.glob(f"_gi.{tag}*.so")):
        return None
    # Only the gi package is taken from Debian's folder; adding the whole folder to
    # sys.path would let its other (older) packages shadow missing ones of the venv.
    spec = importlib.util.spec_from_file_location(
        "gi", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gi"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules["gi"]
        logger.debug("Debian's python3-gi does not load: %s", err)
        return None
    return module


def gi_has(gi: ModuleType, namespace: str, version: str) -> bool:
    """Whether a GObject namespace (Gtk 3.0, AppIndicator3 0.1) is installed."""
    try:
        gi.require_version(namespace, version)
    except ValueError:
        return False
    return True


def import_pystray(name: str) -> ModuleType:
    """pystray on the named backend ("" lets pystray choose), or NoTray."""
    if "pystray" in sys.modules:
        return sys.modules["pystray"]
    saved = os.environ.get("PYSTRAY_BACKEND")
    if name:
        os.environ["PYSTRAY_BACKEND"] = name
    try:
        import pystray
    except Exception as err:
        # With no usable display, pystray raises from deep in Xlib or GTK.
        raise NoTray(f"the {name or 'default'} tray backend failed: {err}") from err
    finally:
        # Programs the agent starts (a browser) must not inherit our choice.
        if saved is None:
            os.environ.pop("PYSTRAY_BACKEND", None)
        else:
            os.environ["PYSTRAY_BACKEND"] = saved
    return pystray


def wait_for_tray_host(backend_name: str, wait: float) -> None:
    """Return once a tray host shows icons of this backend, or raise NoTray."""
    if backend_name not in ("xorg", "gtk"):
        # Windows and macOS always have one; appindicator checked its watcher.
        return
    deadline = time.monotonic() + wait
    while not xembed_tray_present():
        if time.monotonic() >= deadline:
            raise NoTray("no system tray on the display")
        time.sleep(0.25)


def xembed_tray_present() -> bool:
    """Whether a system tray (XEmbed) owns the tray selection of the X screen."""
    try:
        import Xlib.display
        import Xlib.X
    except ImportError:
        return False
    try:
        display = Xlib.display.Display()
    except Exception as err:
        logger.debug("No X display for the tray: %s", err)
        return False
    try:
        atom = display.intern_atom(f"_NET_SYSTEM_TRAY_S{display.get_default_screen()}")
        return display.get_selection_owner(atom) != Xlib.X.NONE
    finally:
        display.close()


def session_bus_answers() -> bool:
    """Whether the session bus named by DBUS_SESSION_BUS_ADDRESS answers."""
    try:
        from gi.repository import Gio, GLib
    except ImportError:
        return False
    try:
        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        call_bus(bus, GLib, Gio, "GetId", None)
    except GLib.Error as err:
        logger.debug("The session bus does not answer: %s", err)
        return False
    return True


def bus_name_available(name: str) -> bool:
    """Whether the session bus has ``name`` now or can start a service for it."""
    try:
        from gi.repository import Gio, GLib
    except ImportError:
        return False
    try:
        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        owned = call_bus(bus, GLib, Gio, "NameHasOwner", GLib.Variant("(s)", (name,)))
        if owned[0]:
            return True
        activatable = call_bus(bus, GLib, Gio, "ListActivatableNames", None)
    except GLib.Error as err:
        logger.debug("The session bus does not answer: %s", err)
        return False
    return name in activatable[0]


def call_bus(bus: Any, glib: Any, gio: Any, method: str, args: Any) -> Any:
    """Call a method of the bus itself and unpack its reply."""
    reply = bus.call_sync(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        method,
        args,
        None,
        gio.DBusCallFlags.NONE,
        2000,
        None,
    )
    return reply.unpack()

"""Fixtures shared by the sync tests of this folder; a module may define its own
``world`` (a different sandbox) in place of this one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sync_support import SyncWorld


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    """A sandbox with 5 companies of 10 devices, set up and approved. Its Tigerpaw's
    faults are cleared before it stops: a test left hanging would hold the stop."""
    made = SyncWorld(tmp_path)
    made.set_up()
    yield made
    made.tigerpaw_faults(reset=True)
    made.close()

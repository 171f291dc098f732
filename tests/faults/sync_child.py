"""A sync-once run in a process of its own, for tests that kill it.

``python -m tests.faults.sync_child DATA_DIR`` opens the store and secrets in
DATA_DIR, reads the sandbox's ``sandbox.json`` there for the Business Hub servers,
prints ``ready`` and runs one full cycle; its exit code is sync-once's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.config import Settings
from agent.secrets import SecretStore
from agent.sources.kbh import KNOWN_SERVERS, ServerTable
from agent.store import Store
from agent.sync.once import run_sync_once
from agent.sync.outbox import RetryPolicy

#: Short waits, so that the next run retries what the last one left.
POLICY = RetryPolicy(base=0.05, cap=0.2, locked=0.05, needs_person=0.2, wait_inline=1)


def main(data_dir: Path) -> int:
    """Run one cycle against the sandbox described in ``data_dir``."""
    sandbox = json.loads((data_dir / "sandbox.json").read_text())
    table = ServerTable(KNOWN_SERVERS)
    table.register(
        {env: (kbh["url"], kbh["cert"]) for env, kbh in sandbox["kbh"].items()}
    )
    with Store.open_in(data_dir) as store:
        secrets = SecretStore(data_dir)
        print("ready", flush=True)
        return run_sync_once(
            store,
            secrets,
            Settings(kes_cloud_server="production"),
            kbh_table=table,
            policy=POLICY,
            settle=2.0,
        )


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

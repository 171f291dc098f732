"""The sync engine: license counts to agreement charges, events and statuses to
service orders, every Tigerpaw write through the outbox.

Pure decisions live in ``licenses.py`` and ``service_orders.py``; ``cycle.py`` and
``tenant_sync.py`` read and queue, ``outbox.py`` sends, ``scheduler.py`` times it all.
"""

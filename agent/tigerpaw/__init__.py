"""Tigerpaw's tsiWS ASMX service and REST API behind one interface.

The sync and the setup page use :class:`agent.tigerpaw.client.TigerpawClient` only.
"""

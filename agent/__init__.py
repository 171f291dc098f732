"""The Tigerpaw integration agent: keeps Tigerpaw in step with Kaspersky consoles."""

__version__ = "0.1.0"

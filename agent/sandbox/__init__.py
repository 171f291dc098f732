"""Emulators of KSC, Business Hub and Tigerpaw that speak their wire formats."""

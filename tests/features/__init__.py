"""One test per line of FEATURES.md, each named after its line."""

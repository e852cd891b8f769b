"""The ``lathe`` command."""

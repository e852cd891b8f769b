"""The one exception type the ``lathe`` command turns into a clean message and exit code."""


class LatheError(Exception):
    """A problem the user can fix: printed without a traceback, exit status 2."""

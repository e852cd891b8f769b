"""The exceptions the ``lathe`` command turns into a clean message and an exit status."""


class LatheError(Exception):
    """A problem the user can fix: printed without a traceback, exit status 2."""

    exit_code = 2


class Interrupted(LatheError):
    """SIGINT/SIGTERM stopped the run after saving a checkpoint (exit 128 + signal number)."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.exit_code = 128 + signal_number

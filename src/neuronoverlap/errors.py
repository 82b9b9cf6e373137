"""Errors the toolkit raises on purpose.

`InputError` is a user's mistake (a malformed file, an unknown language, a store written by
another model...). Its message is one line that names the problem; the command line prints it
and exits with code 2, without a traceback.
"""


class NeuronOverlapError(Exception):
    """Base class of the toolkit's own errors."""


class InputError(NeuronOverlapError, ValueError):
    """Bad input from the user: one-line message, exit code 2 on the command line."""


class StorageError(InputError):
    """A write the operating system refused (disk full, permissions): one-line message naming the
    path and the free space needed; what was stored before is left as it was."""

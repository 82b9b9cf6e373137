"""Errors the toolkit raises on purpose.

`InputError` is a user's mistake (a malformed file, an unknown language, a store written by
another model...). Its message is one line that names the problem; the command line prints it
and exits with code 2, without a traceback.
"""


class NeuronOverlapError(Exception):
    """Base class of the toolkit's own errors."""


class InputError(NeuronOverlapError, ValueError):
    """Bad input from the user: one-line message, exit code 2 on the command line."""

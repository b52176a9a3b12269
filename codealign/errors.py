"""The one exception type a user can cause.

Anything raised as `CodealignError` is a problem with the user's input (a params key,
a file, a line, a model dir). The CLI and every stage print its message as one line
prefixed with `error:` and exit with status 2. Everything else is a bug and keeps its
traceback.
"""


class CodealignError(Exception):
    """A user-facing error whose message names the bad file, line or key."""

"""The one exception type for problems a user can cause and fix."""


class UserError(Exception):
    """A bad input the user can fix: the message is one line naming the file and what was expected.

    Entry scripts catch it, print the message and exit non-zero, so the user sees no traceback.
    """

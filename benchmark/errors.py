"""One exception type for mistakes a user can fix: the CLI prints its message in one line, no traceback."""


class UserError(Exception):
    """A problem with the user's input or machine (bad file, unknown model, missing package), with what to do."""

"""The one error the stack raises: a message that says what failed and what to do."""


class StackError(RuntimeError):
    """A stack component could not be prepared, started, reached or stopped."""

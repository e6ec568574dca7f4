"""The one exception type modscope raises for bad input; the CLI prints it as one line and exits 2."""


class ModscopeError(ValueError):
    """Bad input or an impossible request. The message says what was wrong and what to do instead."""

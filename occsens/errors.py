"""The one exception type occsens raises for bad input."""


class OcclusionError(ValueError):
    """Bad input to occsens: the message names the argument, its value and what is valid."""

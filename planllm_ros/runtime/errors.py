"""The one error type the runtime raises for bad input, bad model folders and unusable backends."""


class PlannerError(ValueError):
    """What was wrong, naming the file / argument and what was expected."""

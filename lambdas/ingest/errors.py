"""The ingest's configuration error, in a module of its own: the webhook rules and the secret both raise it,
and neither imports the other for it."""


class ConfigurationError(ValueError):
    """The function's environment is unusable; the message names the variable and the bad value."""

"""The one error type a user can cause. The CLI prints its message on one line and exits 2."""


class GoodhartError(Exception):
    """A problem with the user's input (config, files, models, data), with a message saying what to fix."""

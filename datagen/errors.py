"""The one error type the CLI turns into a one-line message and exit code 2."""


class DatagenError(Exception):
    """Bad input or an unusable output location; the message names the value and what is allowed."""

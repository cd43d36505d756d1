"""The one error type for bad input: a spec, a data source or a run directory that cannot be used."""


class InputError(Exception):
    """Bad input from the user. The CLI prints the message on one line and exits with code 2."""

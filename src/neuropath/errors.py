"""Errors a user can cause: the CLI prints them as one line and exits with status 2."""


class UsageError(Exception):
    """Bad input (config, environment id, paths, checkpoints): a message naming the problem
    and what is allowed."""

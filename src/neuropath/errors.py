"""Errors the CLI prints as one line: bad input (`UsageError`, exit status 2) and faults of a run (`RunFault`, 1)."""


class UsageError(Exception):
    """Bad input (config, environment id, paths, checkpoints): a message naming the problem
    and what is allowed."""


class RunFault(Exception):
    """A run that cannot go on through no fault of its input: the disk filled up, training diverged. The
    message says what happened and what survived (the last good checkpoint)."""

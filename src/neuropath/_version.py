"""The package version, in one place: pyproject.toml reads it, and run folders and checkpoints record it."""

__version__ = "0.1.0"

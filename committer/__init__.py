"""committer: a versioned, backed-up git history of a directory, without anyone typing git."""

__version__ = "0.1.0"

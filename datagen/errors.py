"""The error types the CLI turns into one line: exit 2 for bad input, exit 1 for a storage failure."""


class DatagenError(Exception):
    """Bad input or an unusable output location; the message names the value and what is allowed."""


class StorageError(DatagenError):
    """The output storage failed mid-run (full, read-only, gone). Not a subject's fault: the run
    stops, everything finished stays, and rerunning the same command finishes the rest."""


class OutputLocked(DatagenError):
    """Another run holds the output folder's lock."""


class DatagenInterrupted(Exception):
    """Ctrl-C or SIGTERM: staging files and finished shards are kept; rerunning resumes."""

"""User-facing errors: the CLI prints these as one line and exits with code 2."""


class ArtbenchError(Exception):
    """A mistake in the user's input (unknown name, bad config, missing file) with a fix in its message."""

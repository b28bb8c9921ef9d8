"""Errors a user can cause and fix: the CLI prints their message alone and exits with code 2."""


class RnnxError(Exception):
    """A mistake in what the user asked for (model, file, target, ...), with a message naming it."""

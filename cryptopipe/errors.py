"""Errors the ``cryptopipe`` command reports to its user.

    PipelineError          a local run cannot start or go on (no Java, a busy port,
                           a warehouse locked by another process); the message says
                           what is wrong and how to fix it. The CLI prints it and
                           exits 1, with no traceback.

The producer's and the stream's own errors live beside them
(``producer.errors``, ``jobs``); the CLI maps those it can explain to this one.
"""


class PipelineError(Exception):
    """A local run cannot start or go on; the message says how to fix it."""

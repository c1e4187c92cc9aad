"""The operator's side: the `newsmon` command, the web process, the supervisor."""


class CommandError(Exception):
    """A command cannot do what it was asked; the message says why and what to do."""

"""One root exception. The library raises; only the CLI edge prints and exits.

`transient` tells retry logic whether trying again can help (a sink that is down) or not
(a bad config, a malformed query), so callers decide by type, not by message text.
"""

from __future__ import annotations


class LogpipeError(Exception):
    """Base of every error logpipe raises on purpose; its message is fit to show a user."""

    transient: bool = False
    exit_code: int = 1


class TransientError(LogpipeError):
    """Trying again later may succeed (a sink is down or overloaded)."""

    transient = True


class TerminalError(LogpipeError):
    """Trying again cannot succeed without a change by a person."""


class UsageError(TerminalError):
    """A command line, config file or query parameter is wrong."""

    exit_code = 2


class ArchiveError(TerminalError):
    """The archive is missing, locked by another process, or unreadable."""


class ArchiveBusyError(ArchiveError):
    """Another process holds the archive's lock (one writer, one compaction at a time)."""


class MissingDependencyError(TerminalError):
    """An optional extra is needed for this feature; the message names the pip command."""

"""The errors a migration step raises: each one sentence a person can act on."""

from __future__ import annotations


class MigrationError(Exception):
    """A step cannot go on; the message names the cluster, the object and the fix."""


class BadInput(MigrationError):
    """The run's parameters or connections are wrong; nothing was changed."""


class Refused(MigrationError):
    """KKP (its admission webhook or its API) refused a change; the message carries KKP's reason."""


class NeedsAttention(MigrationError):
    """The step stopped on something a person must look at; retrying by itself will not help."""


class TransientError(MigrationError):
    """A failure worth retrying (5xx, 429, timeouts, connection resets)."""


class NothingToDo(Exception):
    """The cluster is already where the run would take it: the run ends as a clear no-op."""

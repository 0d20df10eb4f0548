"""Delivery errors that carry their retry policy, as the syncer's sync errors do.

`TransientDeliveryError(delay=...)` means "the provider may take it later": a 5xx, a 429
(with the `Retry-After` it asked for as `delay`), a timeout or a refused connection.
`PermanentDeliveryError` means "sending it again cannot help": any other 4xx, a template
that fails to render, a commit status without a commit. aiohttp errors are converted into
these in `notifier.delivery` only.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """Why one notification did not go through; the text never holds a token or secret URL."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        """The provider's HTTP status, or None when no answer came."""


class TransientDeliveryError(DeliveryError):
    """Worth another attempt, after `delay` seconds when the provider said how long."""

    def __init__(
        self, message: str, *, status: int | None = None, delay: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.delay = delay


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help; the notification is given up at once."""


class DeliveryGaveUp(Exception):
    """The last word on a notification that was not delivered: the error and the attempts."""

    def __init__(self, error: DeliveryError, attempts: int) -> None:
        tried = (
            f"after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else "not sent"
        )
        super().__init__(f"{error.message} ({tried})")
        self.error = error
        self.attempts = attempts

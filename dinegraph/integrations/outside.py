"""What the adapters of outside systems share: how a provider's "no" reaches the caller.

Both errors are DomainErrors, so a request that met them answers with a UserError and
changes nothing. They differ in what a retry can do (the calls-out outbox asks): a refusal
is for good (a wrong number, a limit, a wrong credential), unavailability may pass.
"""

from __future__ import annotations

from dinegraph.domain.errors import DomainError, ErrorCode


class ProviderRefused(DomainError):
    """The provider answered and said no; asking again will not change it."""

    def __init__(
        self,
        code: ErrorCode = ErrorCode.PROVIDER_UNAVAILABLE,
        field: list[str] | None = None,
        *,
        reason: str,
        **params: object,
    ) -> None:
        super().__init__(code, field, **params)
        self.reason = reason


class ProviderUnavailable(DomainError):
    """The provider was busy, failed or did not answer in time: try again later."""

    def __init__(self, field: list[str] | None = None, *, reason: str) -> None:
        super().__init__(ErrorCode.PROVIDER_UNAVAILABLE, field)
        self.reason = reason

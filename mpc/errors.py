"""The small tree of Concilium's exceptions (layer: mpc core).

Every error a user can meet derives from :class:`ConciliumError`. Errors about
bad arguments also derive from the builtin :class:`ValueError`, so ordinary
``except ValueError`` code keeps working. Messages name the party, the stage
and the tag involved, never a secret value.
"""

from __future__ import annotations


class ConciliumError(Exception):
    """Base of every error raised by Concilium."""


class ParameterError(ConciliumError, ValueError):
    """A parameter is invalid or unsafe (bad shape, party id, key size...)."""


class EncodingError(ConciliumError, ValueError):
    """A value cannot be encoded or a message cannot be decoded."""


class RangeError(ConciliumError, ValueError):
    """A fixed-point or integer result could leave the representable range.

    Raised before anything is computed, from public bounds only (see
    :attr:`mpc.SharedTensor.bound`), so every party refuses alike and no
    secret is involved.
    """


class ProtocolAbort(ConciliumError):
    """The protocol cannot continue (a peer failed, too few survivors...)."""


class ProtocolError(ProtocolAbort):
    """Parties disagree about the protocol: wrong tag, stage or session."""


class MalformedPeerData(EncodingError, ProtocolError):
    """A peer sent something malformed: arrays of the wrong count, dtype, shape or range.

    The one type for every check of a peer's data (:meth:`mpc.Party.recv_checked`
    and the schemas of :mod:`mpc.schema`). It is an :class:`EncodingError` and a
    :class:`ProtocolError` (so code that catches either keeps working), and
    carries ``peer``, ``round``, ``tag`` and ``field`` (``None`` where unknown).
    """

    def __init__(self, message: str, *, peer: int | str | None = None, round: int | None = None,
                 tag: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.peer = peer
        self.round = round
        self.tag = tag
        self.field = field


class IntegrityError(ConciliumError):
    """Authentication or integrity check failed. Deliberately opaque."""


class TransportError(ConciliumError):
    """A channel failed: closed, broken or refused connection."""


class PeerTimeout(TransportError, TimeoutError):
    """A peer did not answer within the timeout."""


class PeerFailure(ConciliumError):
    """Base of the knock-on failures: this party stopped because another node failed first.

    ``origin`` is the node where the failure began (a party id, or the dealer's
    node id): launchers report the failure of ``origin`` itself, not its echoes.
    """

    def __init__(self, message: str, origin: int) -> None:
        super().__init__(message)
        self.origin = origin


class PeerAborted(PeerFailure, ProtocolAbort):
    """A peer said it failed (directly, or relaying the failure of ``origin``)."""


class PeerDisconnected(PeerFailure, TransportError):
    """A peer's connection ended without a goodbye (its process died or closed TLS)."""


class PreprocessingExhausted(ConciliumError):
    """A preprocessing store ran out of correlated randomness."""


class PartyError(ConciliumError):
    """A party's own program raised an exception that is not a Concilium error.

    The message names the party: ``party 2 failed: KeyError: 'temperature'``;
    ``party`` and ``error_type`` (the original type's name) are attributes, and
    the original exception is ``__cause__`` where it was raised in this process
    (:func:`mpc.run`, threads); from another process only its type name and
    message travel.
    """

    def __init__(self, party: int, error_type: str, message: str) -> None:
        super().__init__(f"party {party} failed: {error_type}: {message}")
        self.party = party
        self.error_type = error_type


def party_failure(party: int, exc: BaseException) -> BaseException:
    """What a run re-raises for ``exc`` raised by ``party``'s program.

    A Concilium error is itself (typed, with ``party`` set); any other
    ``Exception`` becomes a :class:`PartyError` whose ``__cause__`` is the
    original; ``KeyboardInterrupt`` and ``SystemExit`` go through untouched.
    """
    if isinstance(exc, ConciliumError):
        if getattr(exc, "party", None) is None:
            exc.party = party  # type: ignore[attr-defined]
        return exc
    if not isinstance(exc, Exception):
        return exc
    err = PartyError(party, type(exc).__name__, str(exc))
    err.__cause__ = exc
    return err

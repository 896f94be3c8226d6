"""Cost accounting: every message recorded, summed into rounds and bytes (layer: mpc core).

The record of a run is the list of its messages: logical round, sender,
receiver, tag, phase, payload bytes (the arrays) and wire bytes (the whole
frame). From it come the **cost** researchers read (:class:`Cost`), the
**transcript** teachers show and the **view** tests inspect.

Rounds are Lamport rounds: a party's clock starts at 0; a message carries its
sender's clock; receiving a message of round r moves the receiver's clock to at
least r + 1. The number of rounds of a run is the length of the longest causal
chain of messages (the latest message's round plus one), the same on every
transport. The rounds of a phase are how much it lengthens that chain: the
latest clock at its end minus the latest clock at its start (a party's clock
for this purpose is the round after its latest activity, so that a phase
ending with a send owns that round). The default phase ``online`` gets the
rounds outside every explicit phase, so top-level phases add up to the run's
rounds; a nested phase's rounds are also counted in its outer phase (its
messages and bytes are not).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

DEALER = -1
"""Party id used in records for the trusted dealer."""


@dataclass(frozen=True)
class MessageRecord:
    """One message as the runtime saw it."""

    round: int
    sender: int
    receiver: int
    tag: str
    phase: str
    payload_bytes: int
    wire_bytes: int


@dataclass
class PhaseCost:
    """Totals of one phase (or of the whole run)."""

    rounds: int = 0
    messages: int = 0
    bytes_sent: dict[int, int] = field(default_factory=dict)
    bytes_received: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_bytes(self) -> int:
        """Payload bytes sent by everyone, the dealer included."""
        return sum(self.bytes_sent.values())

    @property
    def party_bytes_sent(self) -> dict[int, int]:
        """Payload bytes sent by each party (0..n-1), the dealer left out."""
        return {p: b for p, b in self.bytes_sent.items() if p != DEALER}

    @property
    def dealer_bytes_sent(self) -> int:
        """Payload bytes the trusted dealer sent (0 without a dealer)."""
        return self.bytes_sent.get(DEALER, 0)

    def describe_sent(self) -> str:
        """``party 0 1,024 B, party 1 512 B, dealer 4,096 B``: who sent what, senders with bytes only."""
        parts = [f"party {p} {b:,} B" for p, b in sorted(self.party_bytes_sent.items()) if b]
        if self.dealer_bytes_sent:
            parts.append(f"dealer {self.dealer_bytes_sent:,} B")
        return ", ".join(parts) or "nothing"


@dataclass
class Cost:
    """Measured cost of a run: messages, rounds, bytes per party and per phase, time."""

    n_parties: int
    messages: list[MessageRecord] = field(default_factory=list)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    phase_rounds: dict[str, int] = field(default_factory=dict)

    def _summarise(self, records: list[MessageRecord]) -> PhaseCost:
        pc = PhaseCost()
        ids = [DEALER, *range(self.n_parties)]
        pc.bytes_sent = {i: 0 for i in ids}
        pc.bytes_received = {i: 0 for i in ids}
        rounds = set()
        for m in records:
            pc.bytes_sent[m.sender] = pc.bytes_sent.get(m.sender, 0) + m.payload_bytes
            pc.bytes_received[m.receiver] = pc.bytes_received.get(m.receiver, 0) + m.payload_bytes
            if m.sender != DEALER:
                rounds.add(m.round)
        pc.messages = len(records)
        pc.rounds = (max(rounds) + 1 - min(rounds)) if rounds else 0
        if not any(m.sender == DEALER for m in records):
            pc.bytes_sent.pop(DEALER)
            pc.bytes_received.pop(DEALER)
        return pc

    @property
    def rounds(self) -> int:
        """Communication rounds between the parties (dealer traffic excluded)."""
        return max((m.round + 1 for m in self.messages if m.sender != DEALER), default=0)

    @property
    def bytes_sent(self) -> dict[int, int]:
        """Payload bytes sent by each party (the dealer under id -1 if it spoke; see
        :attr:`party_bytes_sent` and :attr:`dealer_bytes_sent` for the two apart)."""
        return self._summarise(self.messages).bytes_sent

    @property
    def bytes_received(self) -> dict[int, int]:
        return self._summarise(self.messages).bytes_received

    @property
    def party_bytes_sent(self) -> dict[int, int]:
        """Payload bytes sent by each party (0..n-1), the dealer left out."""
        return self._summarise(self.messages).party_bytes_sent

    @property
    def dealer_bytes_sent(self) -> int:
        """Payload bytes the trusted dealer sent in the whole run (0 without a dealer)."""
        return sum(m.payload_bytes for m in self.messages if m.sender == DEALER)

    @property
    def wire_bytes(self) -> int:
        """Total bytes of all frames, headers included."""
        return sum(m.wire_bytes for m in self.messages)

    def bytes_per_party(self) -> float:
        """Mean payload bytes sent per (non-dealer) party."""
        sent = self.bytes_sent
        return sum(v for k, v in sent.items() if k != DEALER) / max(self.n_parties, 1)

    def phases(self) -> dict[str, PhaseCost]:
        """Per-phase totals, in order of first appearance (the dealer's messages are in
        ``preprocessing``; each :class:`PhaseCost` gives ``party_bytes_sent`` and
        ``dealer_bytes_sent`` apart)."""
        grouped: dict[str, list[MessageRecord]] = defaultdict(list)
        for m in self.messages:
            grouped[m.phase].append(m)
        out = {}
        for phase, recs in grouped.items():
            pc = self._summarise(recs)
            pc.seconds = self.phase_seconds.get(phase, 0.0)
            if phase in self.phase_rounds:
                pc.rounds = self.phase_rounds[phase]
            out[phase] = pc
        for phase, secs in self.phase_seconds.items():
            out.setdefault(phase, PhaseCost(rounds=self.phase_rounds.get(phase, 0), seconds=secs))
        return out

    def summary(self) -> str:
        """A short human-readable account of the cost."""
        lines = [f"{self.rounds} rounds, {len(self.messages)} messages, {self.seconds:.3f} s"]
        for p, sent in sorted(self.bytes_sent.items()):
            who = "dealer" if p == DEALER else f"party {p}"
            lines.append(f"  {who}: sent {sent:,} B, received {self.bytes_received.get(p, 0):,} B")
        return "\n".join(lines)

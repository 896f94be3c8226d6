"""Diffie-Hellman private set intersection on Curve25519 (layer: protocols).

Two parties, a *receiver* R with a set X and a *sender* S with a set Y, learn
``X ∩ Y`` (or only ``|X ∩ Y|``) and nothing else beyond the two set sizes.
The pure part (hashing items to the group, blinding) needs no runtime; only
:func:`psi` talks, through a :class:`mpc.Party`.

Protocol
--------
R holds a secret scalar ``a``, S a secret scalar ``b`` (32 bytes from the OS
CSPRNG, clamped by X25519). ``H`` hashes an item to a point of Curve25519.

1. R sends ``A_i = a·H(x_i)`` for its distinct items, in its own order.
   S, at the same time, sends ``B_j = b·H(y_j)`` for its distinct items in a
   uniformly random order (a PRG permutation: the positions of the matches
   must not reveal where they sit in S's sorted set).
2. S re-blinds ``C_i = b·A_i = ab·H(x_i)``, keeps the first 16 bytes of each
   and sends them in R's order (or shuffled, if only the size is revealed).
   R meanwhile re-blinds ``D_j = a·B_j = ab·H(y_j)``.
3. R outputs the ``x_i`` with ``C_i ∈ {D_j}`` (or the count of such ``i``).
   Optionally (``both=True``) R sends S the positions ``j`` of the matching
   ``D_j`` (or the count), and S maps them back to its items.

Steps 1 and 2 overlap: S re-blinds R's points while R re-blinds S's points,
and each party splits its own multiplications over a thread pool
(``workers``): they call libsodium's ``crypto_scalarmult`` through cffi, which
releases the GIL, on pointers into one buffer. A party hashes its items chunk
by chunk (pure Python: that part holds the GIL) while its pool multiplies the
chunks already hashed.

Group. X25519 (Montgomery ladder, x-coordinate only, RFC 7748) through
libsodium (PyNaCl): about 37 us per scalar multiplication here, against about
95 us for an Ed25519 point multiplication; Ristretto255 is not exposed by
PyNaCl 1.6. Items are hashed with RFC 9380 ``expand_message_xmd`` (SHA-512)
to a field element ``u`` and mapped with Elligator 2 to the u-coordinate of a
point on the curve itself, never on its twist (a raw 32-byte hash would land
on the twist half of the time, and on which side it lands is visible in the
blinded value: one bit of ``H(y)`` per item). This is the ``encode_to_curve``
of suite ``curve25519_XMD:SHA-512_ELL2_NU_`` without the final cofactor
clearing: X25519 clamps every scalar to a multiple of 8, so ``a·H(x)`` always
lies in the subgroup of prime order ``ℓ ≈ 2^252``, and
``a·(b·P) = b·(a·P)``, which is the commutativity the protocol needs.

Security
--------
Semi-honest, two parties, no third party; security in the random-oracle model
under the decisional Diffie-Hellman assumption in the prime-order subgroup
of Curve25519 (x-only: the group modulo ±1), as for the DH-PSI of Meadows and
of Huberman, Franklin and Hogg, with ``hash_to_field`` modelled as a random
oracle into GF(p). The reduction programs it through Elligator 2's inverse:
it draws ``P = r·G + T`` (r known, T a random 8-torsion point, G embedding
the DDH challenge), counts the k in {0, 2, 4} field elements that map to
``x(P)`` (``±u`` on each of the two branches), accepts with probability k/4
and answers one of them at random, else redraws. Every u is then answered
with probability exactly proportional to 1/4, i.e. the programmed oracle is
uniform over GF(p), as the real one. Hence every blinded
value ``a·H(x)`` a party sees from its peer is indistinguishable from a
uniform element of the subgroup (tested in ``tests/protocols/psi/test_psi.py``).

What leaks: each party learns the other's number of *distinct* items; R
learns the intersection (or only its size); S learns nothing else, unless
``both=True``, where S learns what R learns and must trust R's report (a
malicious R could report any subset). A malicious party could also use
items it does not hold; this module does not defend against that. Received
points are checked for the right size and small order only: a deviating peer
could send u-coordinates on the twist (or with the top bit set), which X25519
processes anyway; that can only spoil matches, not reveal anything the
semi-honest analysis does not. ``max_peer_items`` bounds the curve work a
peer can cause (its set is refused before any multiplication). Duplicates
are removed before the protocol: the result is a set intersection.

Cost
----
Messages: ``R→S 12 + 32·n_R`` bytes, ``S→R 12 + 32·n_S + 16·n_R`` (12 bytes of
header: version, item kind, settings, digest of ``dst``); with ``both=True``
``R→S 8·|X ∩ Y|`` more (or 8 for the size). Rounds: 2 (3 with ``both``).
Computation: ``n_R + n_S`` X25519 multiplications and ``n`` hashes (two
SHA-512 and one Jacobi symbol each, one batch inversion) per party.

References
----------
C. Meadows, "A more efficient cryptographic matchmaking protocol", IEEE S&P 1986.
B. Huberman, M. Franklin, T. Hogg, "Enhancing privacy and trust in electronic
communities", ACM EC 1999.
D. Bernstein, M. Hamburg, A. Krasnova, T. Lange, "Elligator: elliptic-curve
points indistinguishable from uniform random strings", ACM CCS 2013.
RFC 7748 (X25519), RFC 9380 §5.3.1 (expand_message_xmd), §6.7.1 (Elligator 2).

For large sets, ``psi(..., protocol="oprf")`` runs the OT-based KKRT16
protocol of :mod:`~protocols.psi.oprf` instead (same arguments and results,
symmetric crypto per item, more bytes and rounds).

Modules: :mod:`~protocols.psi.hashing` (items, hashing to the curve),
:mod:`~protocols.psi.blinding` (X25519 blinding), :mod:`~protocols.psi.oprf` (the
OT-based protocol) and :mod:`~protocols.psi.protocol`
(:func:`psi`); this package re-exports their public names.
"""

from .blinding import blind, generate_key, hash_and_blind
from .hashing import (DEFAULT_DST, ELLIGATOR_Z, FIELD_PRIME, MONTGOMERY_A, POINT_BYTES, TAG_BYTES,
                      canonical_items, hash_to_field, hash_to_group, map_to_curve)
from .hashing import _hash_to_points as _hash_to_points  # used by tests/protocols/psi/test_psi.py
from .protocol import _reblind_peer as _reblind_peer  # used by bench/fuzz.py
from .protocol import psi

__all__ = ["DEFAULT_DST", "ELLIGATOR_Z", "FIELD_PRIME", "MONTGOMERY_A", "POINT_BYTES", "TAG_BYTES",
           "blind", "canonical_items", "generate_key", "hash_and_blind", "hash_to_field",
           "hash_to_group", "map_to_curve", "psi"]

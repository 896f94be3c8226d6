"""Concilium's core (layer: mpc): rings, fixed point, secret sharing, preprocessing,
randomness, the party runtime and its transports.

Quick start::

    import numpy as np
    import mpc

    def program(party, value):
        values = mpc.share_all(party, value)      # every party secret-shares its input
        total = values[0] + values[1] + values[2]  # local, no communication
        return total.reveal()                      # one round

    result = mpc.run(program, parties=3, inputs=[1.0, 2.0, 3.5])
    print(result.outputs[0], result.cost.summary())
"""

from .arith.fixed import FixedPoint
from .errors import (ConciliumError, EncodingError, IntegrityError, MalformedPeerData, ParameterError,
                     PartyError, PeerAborted, PeerDisconnected, PeerFailure, PeerTimeout,
                     PreprocessingExhausted, ProtocolAbort, ProtocolError, RangeError, TransportError)
from .party import Party
from .preprocessing import DealerSource, Preprocessing, TrustedDealer
from .preprocessing.dealer import TrustedDealerWarning
from .runner import RunResult, run
from .sharing.binary import BinaryTensor, share_binary
from .sharing.tensor import (SharedTensor, concatenate, reveal, share, share_all, stack,
                             where)
from .transport.stats import Cost

__all__ = [
    "BinaryTensor", "ConciliumError", "Cost", "DealerSource", "EncodingError", "FixedPoint", "IntegrityError",
    "MalformedPeerData",
    "ParameterError", "Party", "PartyError", "PeerAborted", "PeerDisconnected", "PeerFailure", "PeerTimeout", "Preprocessing", "PreprocessingExhausted",
    "ProtocolAbort", "ProtocolError", "RangeError", "RunResult", "SharedTensor", "TransportError",
    "TrustedDealer", "TrustedDealerWarning", "concatenate", "reveal", "run", "share", "share_all", "share_binary", "stack", "where",
]

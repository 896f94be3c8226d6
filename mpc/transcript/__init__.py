"""Transcripts of runs: what crossed the wire, as JSON and as a self-contained web page (layer: mpc core).

Quick start::

    result = mpc.run(program, parties=3, transcript="run.html")   # or "run.json"
    result.transcript.write_html("run.html", labels=["Ann", "Bob", "Cy"])

Drivers with their own loop (star protocols, many clients) record their
messages with a :class:`Recorder` (or pass records to :func:`write_page`).
A run over several processes writes one part per party (:func:`from_party`)
and combines them with :func:`merge`. Secret payloads are never written: only headers,
sizes, byte entropy, and the values the protocol declared public
(``party.publish(name, value)``, ``party.send(..., public=True)``).
"""

from .html import page_data, relabel, render, write_html, write_page
from .record import (ArrayInfo, MessageDetail, PartySummary, PublishedValue, Transcript,
                     TranscriptMessage, byte_entropy, describe_arrays, from_records,
                     public_value, read_json)
from .merge import from_parties, from_party, merge
from .recorder import Recorder, frame_bytes

__all__ = [
    "ArrayInfo", "MessageDetail", "PartySummary", "PublishedValue", "Recorder", "Transcript", "TranscriptMessage",
    "byte_entropy", "describe_arrays", "frame_bytes", "from_parties", "from_party", "merge", "from_records", "page_data", "public_value",
    "read_json", "relabel", "render", "write_html", "write_page",
]

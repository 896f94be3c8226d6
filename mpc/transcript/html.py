"""A transcript as one self-contained web page: parties as lanes, messages as arrows (layer: mpc core).

The page inlines its data, style and script: it opens from a file with no
server and makes no network request (a Content-Security-Policy forbids any).
It shows the cost totals, each party's output and traffic, and every message
as an arrow from its sender's lane to its receiver's, in order, grouped by
round and labelled with its tag and payload size. A click on a message shows
its header (tag, round, phase, per-array dtype, shape and bytes, wire bytes)
and, only if the protocol marked it public, its value; a secret payload is
described by its size and byte entropy, never written.

Large runs stay usable: rounds are collapsed (and drawn only when opened)
above :data:`COLLAPSE_ABOVE` messages; tags and array headers are stored once;
with more than ``max_lanes`` parties, the busiest keep their own lane and the
rest share an "others" lane whose arrows are labelled with both ends.
A run of 10^4 messages makes a page of about 0.5 MB; above :data:`MAX_ROWS`
messages each round shows its first messages and counts the others.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ParameterError
from ..transport.stats import DEALER, Cost, MessageRecord
from .assets import CSS, JS
from .record import RANDOM_THRESHOLD, MessageDetail, Transcript, from_records

COLLAPSE_ABOVE = 300
"""Pages with more messages (or more than 60 rounds) start with every round collapsed."""
MAX_ROWS = 50_000
"""Messages drawn in one page at most (about 45 bytes each); the JSON form keeps all of them."""
OTHERS = -2
"""Lane id of the shared lane for parties beyond ``max_lanes``."""

EXPLAIN = (
    "Each column is a party; each arrow is one message, in the order it was sent, grouped by "
    "communication round (a message of round r may depend on messages of earlier rounds only). "
    "Its label is the message's tag (the protocol step that sent it) and its payload size. "
    "Secret payloads (shares, masked values) are never written into this page: click a message "
    "to see its header (dtype, shape, bytes) and an entropy estimate that shows whether its bytes "
    "look random. Values the protocol declared public (opened values, results) are shown in green.")


def _lanes(t: Transcript, max_lanes: int) -> list[int]:
    dealer = [DEALER] if any(DEALER in (m.record.sender, m.record.receiver) for m in t.messages) else []
    if t.n_parties <= max_lanes:
        return dealer + list(range(t.n_parties))
    busy = np.array([p.sent_messages + p.received_messages for p in t.parties])
    keep = np.sort(np.argsort(-busy, kind="stable")[: max_lanes - 1])
    return dealer + [int(p) for p in keep] + [OTHERS]


def _kept(t: Transcript, max_rows: int) -> tuple[list[int] | None, dict[int, list[int]]]:
    """Indexes of the messages drawn (None: all) and, per round, the count and bytes left out."""
    if len(t.messages) <= max_rows:
        return None, {}
    rounds = np.fromiter((m.record.round for m in t.messages), np.int64, len(t.messages))
    per_round = max(50, max_rows // len(np.unique(rounds)))
    keep: list[int] = []
    omitted: dict[int, list[int]] = {}
    seen: dict[int, int] = {}
    for i, m in enumerate(t.messages):
        r = m.record.round
        seen[r] = seen.get(r, 0) + 1
        if seen[r] <= per_round:
            keep.append(i)
        else:
            o = omitted.setdefault(r, [0, 0])
            o[0] += 1
            o[1] += m.record.payload_bytes
    return keep, omitted


def page_data(t: Transcript, *, max_lanes: int = 12, collapsed: bool | None = None,
              max_cards: int = 64, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """The compact data object the page's script draws from (tags and headers interned).

    Parties with a lane of their own (at most ``max_cards``) get a card and a
    row of the bytes table; the others are summarised (count, min, max, total).
    Above ``max_rows`` messages each round keeps its first ``max_rows / rounds``
    (at least 50) and counts the rest, so the page stays bounded.
    """
    if max_lanes < 2:
        raise ParameterError("max_lanes must be at least 2")
    if max_rows < 1:
        raise ParameterError("max_rows must be at least 1")
    index, omitted = _kept(t, max_rows)
    messages = t.messages if index is None else [t.messages[i] for i in index]
    tags: dict[str, int] = {}
    phases: dict[str, int] = {}
    heads: dict[str, int] = {}
    head_list: list[Any] = []
    pubs: list[Any] = []
    rows = []
    for m in messages:
        r = m.record
        h = -1
        ent = None
        if m.arrays:
            head = [[a.dtype, list(a.shape), a.nbytes] for a in m.arrays]
            key = json.dumps(head)
            if key not in heads:
                heads[key] = len(head_list)
                head_list.append(head)
            h = heads[key]
            ent = [-1 if a.entropy is None else round(a.entropy * 100) for a in m.arrays]
        p = -1
        if m.public is not None:
            p = len(pubs)
            pubs.append(_js_safe(list(m.public)))
        rows.append([r.round, r.sender, r.receiver, tags.setdefault(r.tag, len(tags)),
                     phases.setdefault(r.phase, len(phases)), r.payload_bytes, r.wire_bytes, h, ent, p])
    published: dict[tuple[str, str], dict[str, Any]] = {}
    for v in t.published:
        pkey = (v.tag, json.dumps(v.value, sort_keys=True))
        entry = published.setdefault(pkey, {"tag": v.tag, "round": v.round, "parties": [],
                                           "value": _js_safe(v.value)})
        entry["parties"].append(v.party)
        entry["round"] = min(entry["round"], v.round)
    lanes = _lanes(t, max_lanes)
    shown = [p for p in t.parties if p.party in lanes][:max_cards]
    shown_ids = {p.party for p in shown}
    hidden = [p for p in t.parties if p.party not in shown_ids]
    others = None
    if hidden:
        sent = np.array([p.sent_bytes for p in hidden])
        got = np.array([p.received_bytes for p in hidden])
        others = {"count": len(hidden), "sent": [int(sent.min()), int(sent.max()), int(sent.sum())],
                  "received": [int(got.min()), int(got.max()), int(got.sum())]}
    n_rounds = len({r[0] for r in rows})
    if collapsed is None:
        collapsed = len(t.messages) > COLLAPSE_ABOVE or n_rounds > 60
    return {"title": t.title, "error": t.error, "n": t.n_parties,
            "labels": [p.label for p in t.parties],
            "lanes": lanes, "collapsed": bool(collapsed), "threshold": RANDOM_THRESHOLD,
            "cost": t.cost, "parties": [_js_safe(p.to_dict()) for p in shown], "others": others,
            "published": list(published.values()), "tags": list(tags), "phases": list(phases),
            "heads": head_list, "pub": pubs, "m": rows, "index": index,
            "omitted": {str(r): o for r, o in omitted.items()}}


JS_SAFE = 2**53
"""Integers beyond this magnitude are written as strings in the page (JavaScript numbers are doubles)."""


def _js_safe(v: Any) -> Any:
    """``v`` with integers too large for a JavaScript number turned into strings (exact digits)."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return str(v) if abs(v) > JS_SAFE else v
    if isinstance(v, list):
        return [_js_safe(x) for x in v]
    if isinstance(v, tuple):
        return [_js_safe(x) for x in v]
    if isinstance(v, dict):
        return {k: _js_safe(x) for k, x in v.items()}
    return v


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>', '&' or line separators left raw."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(t: Transcript, *, title: str | None = None,
           labels: Sequence[str] | Mapping[int, str] | None = None,
           max_lanes: int = 12, collapsed: bool | None = None, max_rows: int = MAX_ROWS) -> str:
    """The page for transcript ``t``, as one HTML string.

    Parameters
    ----------
    title:
        Page title (default: the transcript's, the program's name).
    labels:
        Party names to show instead of the transcript's (``["St. Mary's", ...]``
        or ``{0: "server"}``).
    max_lanes:
        Parties beyond this number share one "others" lane.
    collapsed:
        Start with rounds collapsed; by default only for large runs.
    max_rows:
        Draw at most this many messages (the first of each round); the page
        says how many it left out, the JSON form has them all.
    """
    if labels is not None:
        t = relabel(t, labels)
    if title is not None:
        t = Transcript(t.n_parties, t.messages, t.parties, t.published, t.cost, title, t.error)
    data = page_data(t, max_lanes=max_lanes, collapsed=collapsed, max_rows=max_rows)
    esc = html.escape(t.title)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta name=\"generator\" content=\"Concilium transcript\">\n<title>{esc} — transcript</title>\n"
            f"<style>{CSS}</style></head>\n<body><main>\n"
            f"<h1 id=\"title\">{esc}</h1><div class=\"sub\" id=\"sub\"></div><div id=\"err\"></div>\n"
            f"<div class=\"explain\">{html.escape(EXPLAIN)}</div>\n"
            "<h2>Cost</h2><div id=\"cost\"></div>\n"
            "<h2>Parties: what each learned and what it saw</h2><div class=\"cards\" id=\"parties\"></div>\n"
            "<h2>Messages</h2><div class=\"tools\"><button id=\"expand\">expand all rounds</button>"
            "<button id=\"collapse\">collapse all</button>"
            "<input id=\"find\" placeholder=\"find a tag or party, then Enter\"></div>\n"
            "<div id=\"diagram\"><div class=\"lanes\" id=\"lanes\"></div><div id=\"rounds\"></div></div>\n"
            "<noscript><p class=\"error\">This page draws its diagram with JavaScript; "
            "the same transcript is available as JSON.</p></noscript>\n"
            "</main><aside id=\"detail\"><h2>Message details</h2><p class=\"hint\">Click a message to see "
            "its header: tag, dtype, shape and size, and its value if the protocol made it public.</p>"
            "</aside>\n"
            f"<script type=\"application/json\" id=\"transcript-data\">{_script_json(data)}</script>\n"
            f"<script>{JS}</script>\n</body></html>\n")


def relabel(t: Transcript, labels: Sequence[str] | Mapping[int, str]) -> Transcript:
    """A copy of ``t`` with new party names (a list for all, or a mapping for some)."""
    if not isinstance(labels, Mapping):
        if len(labels) != t.n_parties:
            raise ParameterError(f"{len(labels)} labels for {t.n_parties} parties")
        labels = dict(enumerate(labels))
    parties = [type(p)(**(p.to_dict() | {"label": str(labels.get(p.party, p.label))})) for p in t.parties]
    return Transcript(t.n_parties, t.messages, parties, t.published, t.cost, t.title, t.error)


def write_html(t: Transcript, path: str | os.PathLike[str], **options: Any) -> None:
    """Write the page for ``t`` to ``path`` (options as in :func:`render`)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(t, **options))


def write_page(records: Iterable[MessageRecord], path: str | os.PathLike[str], n_parties: int, *,
               details: Sequence[MessageDetail | None] | None = None,
               outputs: Sequence[Any] | None = None,
               labels: Sequence[str] | Mapping[int, str] | None = None,
               cost: Cost | None = None, title: str = "Concilium run",
               **options: Any) -> Transcript:
    """Build a transcript from message records and write it (HTML, or JSON for ``*.json``).

    For drivers that run their own loop instead of :func:`mpc.run`, such as a
    star protocol with a thousand clients: pass the driver's records in order,
    ``labels={0: "server"}`` or a list, and optionally per-record
    :class:`MessageDetail` (``MessageDetail(describe_arrays(arrays))``) and
    per-party outputs. Returns the transcript.
    """
    t = from_records(records, n_parties, details=details, outputs=outputs, labels=labels,
                     cost=cost, title=title)
    if os.fspath(path).lower().endswith(".json"):
        t.write_json(path)
    else:
        write_html(t, path, **options)
    return t

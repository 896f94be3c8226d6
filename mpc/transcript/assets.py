"""Style sheet and script inlined into every transcript page (layer: mpc core).

Kept as Python strings so that the page needs no package data and no network.
The script reads the transcript from a JSON ``<script>`` element and builds the
DOM with ``textContent`` only (never ``innerHTML`` on data), so a tag chosen by
protocol code cannot inject markup. Rounds whose ``<details>`` is closed are
drawn only when opened, and an open round draws 400 rows at a time, which keeps
pages of 10^4 messages responsive.
"""

CSS = r"""
:root{--ink:#1d2330;--mute:#6b7280;--line:#d6dae1;--bg:#fafbfc;--acc:#2563eb;--pub:#0f7b3f;
--sec:#8a4b08;--dealer:#7c3aed;--lanew:0px}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg)}
main{margin-right:380px;padding:18px 24px 60px}
h1{font-size:22px;margin:0 0 2px}h2{font-size:16px;margin:22px 0 8px}
.sub{color:var(--mute);margin-bottom:10px}
.explain{background:#eef4ff;border:1px solid #cddcfb;border-radius:8px;padding:8px 12px;max-width:980px}
.error{background:#fdecec;border:1px solid #f3b4b4;color:#8b1111;border-radius:8px;padding:8px 12px;
margin:10px 0;font-weight:600}
table{border-collapse:collapse;background:#fff;margin:4px 0}
td,th{border:1px solid var(--line);padding:3px 9px;text-align:right;white-space:nowrap}
th{background:#f1f3f6;font-weight:600}td:first-child,th:first-child{text-align:left}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 12px;min-width:200px;
max-width:420px}
.card b{display:block;margin-bottom:2px}
.card .val{max-height:9.5em;overflow:auto}
.val{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px;color:var(--pub);
white-space:pre-wrap;word-break:break-all}
.tools{margin:6px 0;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
button{font:inherit;padding:2px 10px;border:1px solid var(--line);border-radius:6px;background:#fff;
cursor:pointer}
input{font:inherit;padding:2px 8px;border:1px solid var(--line);border-radius:6px;width:260px}
#diagram{background:#fff;border:1px solid var(--line);border-radius:8px}
.lanes{display:flex;position:sticky;top:0;z-index:3;background:#fff;border-bottom:2px solid var(--line);
padding-left:56px}
.lanes div{flex:1;text-align:center;font-weight:600;padding:6px 2px;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap}
.lanes .dealer{color:var(--dealer)}.lanes .others{color:var(--mute);font-style:italic}
details.round{border-top:1px solid var(--line)}
details.round>summary{cursor:pointer;padding:4px 10px;background:#f6f7f9;color:var(--ink);
font-size:13px;list-style-position:inside}
details.round>summary .phase{color:var(--mute)}
.body{position:relative;padding:4px 0 6px 56px}
.lane{position:absolute;top:0;bottom:0;border-left:1px dashed #c3c8d1}
.msg{position:relative;height:30px;cursor:pointer}
.msg:hover{background:#f3f6fb}.msg.sel{background:#e3ecff}
.msg .n{position:absolute;left:-52px;width:44px;top:8px;text-align:right;color:var(--mute);font-size:11px}
.arrow{position:absolute;top:20px;height:0;border-top:2px solid var(--acc)}
.arrow.dealer{border-top-color:var(--dealer)}
.arrow::after{content:"";position:absolute;top:-6px;border:5px solid transparent}
.arrow.ltr::after{right:-2px;border-left:8px solid var(--acc);border-right:0}
.arrow.rtl::after{left:-2px;border-right:8px solid var(--acc);border-left:0}
.arrow.dealer.ltr::after{border-left-color:var(--dealer)}.arrow.dealer.rtl::after{border-right-color:var(--dealer)}
.arrow.self{border:2px solid var(--acc);border-left:0;height:12px;top:12px;width:22px!important;
border-radius:0 8px 8px 0}
.arrow.self::after{display:none}
.lbl{position:absolute;top:1px;transform:translateX(-50%);white-space:nowrap;font-size:12px;
background:rgba(255,255,255,.85);padding:0 4px;border-radius:4px}
.lbl .t{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
.lbl .b{color:var(--mute)}
.badge{display:inline-block;font-size:10.5px;border-radius:8px;padding:0 5px;margin-left:3px}
.badge.rnd{background:#fff4e5;color:var(--sec)}.badge.pub{background:#e6f6ec;color:var(--pub)}
aside{position:fixed;right:0;top:0;bottom:0;width:370px;overflow:auto;background:#fff;
border-left:1px solid var(--line);padding:16px}
aside h2{margin-top:0}
aside dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:0 0 8px}
aside table{font-size:12.5px;width:100%}aside td,aside th{padding:2px 5px}
aside dt{color:var(--mute)}aside dd{margin:0;word-break:break-all}
.secret{background:#fff8ef;border:1px solid #f1d3ad;border-radius:6px;padding:6px 8px;color:var(--sec)}
.public{background:#eefaf2;border:1px solid #b6e2c4;border-radius:6px;padding:6px 8px}
.hint{color:var(--mute);font-size:12.5px}
#cost{display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap}
button.more{margin:6px 0 2px 4px}
"""

JS = r"""
"use strict";
const D = JSON.parse(document.getElementById("transcript-data").textContent);
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "cls") e.className = v; else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined)
    e.appendChild(typeof k === "string" || typeof k === "number" ? document.createTextNode(String(k)) : k);
  return e;
}
const num = (x) => Number(x).toLocaleString("en-US");
const range = (v, unit = "") => v[0] === v[1] ? num(v[0]) + unit : num(v[0]) + "–" + num(v[1]) + unit;
const bytes = (x) => num(x) + " B";
const DT = {"|u1":"uint8","<u2":"uint16","<u4":"uint32","<u8":"uint64","|i1":"int8","<i2":"int16",
  "<i4":"int32","<i8":"int64","<f4":"float32","<f8":"float64","|b1":"bool"};
const dtname = (d) => DT[d] || d;
const shape = (s) => "(" + s.join(", ") + (s.length === 1 ? ",)" : ")");
const who = (p) => p === -1 ? "dealer" : (D.labels[p] !== undefined ? D.labels[p] : "party " + p);
function fmtValue(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return String(Number.isInteger(v) ? v : +v.toPrecision(8));
  if (typeof v === "string" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "[" + v.map(fmtValue).join(", ") + "]";
  if (v.values !== undefined && v.shape !== undefined) {
    const body = v.values.map(fmtValue).join(", ") + (v.truncated ? ", …" : "");
    return (v.shape.length ? dtname(v.dtype) + " " + shape(v.shape) + ": " : "") + "[" + body + "]";
  }
  if (v.type !== undefined && Object.keys(v).length <= 2) return "<" + v.type + ", not shown>";
  return Object.entries(v).map(([k, x]) => k + ": " + fmtValue(x)).join("\n");
}
const heads = D.heads, msgs = D.m;
const idx = (i) => D.index ? D.index[i] : i;  // the message's number in the run (rows may be left out)
const M = (i) => { const r = msgs[i]; return {i, round: r[0], from: r[1], to: r[2], tag: D.tags[r[3]],
  phase: D.phases[r[4]], payload: r[5], wire: r[6], head: r[7] < 0 ? null : heads[r[7]], ent: r[8],
  pub: r[9] < 0 ? null : D.pub[r[9]]}; };
function randomness(nbytes, ent) {
  if (ent === null || ent === undefined || ent < 0 || nbytes < 8) return null;
  return Math.min(1, ent / 100 / Math.min(8, Math.log2(nbytes)));
}
function looksRandom(m) {  // true: every array judged looks random; "partly"; false; null: too small
  if (!m.head || m.pub) return null;
  let rnd = 0, judged = 0;
  m.head.forEach((h, k) => { const r = randomness(h[2], m.ent ? m.ent[k] : -1);
    if (r === null) return; judged++; if (r >= D.threshold) rnd++; });
  return judged === 0 ? null : rnd === judged ? true : rnd > 0 ? "partly" : false;
}
const laneOf = new Map(D.lanes.map((p, k) => [p, k]));
const L = D.lanes.length;
const x = (p) => (laneOf.has(p) ? laneOf.get(p) : laneOf.get(-2)) + 0.5;
const publishedByTag = new Map();
for (const p of D.published) { if (!publishedByTag.has(p.tag)) publishedByTag.set(p.tag, []);
  publishedByTag.get(p.tag).push(p); }

function header() {
  const c = D.cost;
  $("title").textContent = D.title;
  $("sub").textContent = D.n + " parties · " + c.rounds + " rounds · " + num(c.messages) + " messages · " +
    bytes(c.payload_bytes) + " of payload (" + bytes(c.wire_bytes) + " on the wire) · " +
    (+c.seconds).toFixed(3) + " s";
  if (D.error) $("err").appendChild(el("div", {cls: "error"}, "The run failed: " + D.error +
    " — the messages below are those sent before the failure."));
}
function costTables() {
  const c = D.cost, t = el("table", {}, el("tr", {}, el("th", {}, "phase"), el("th", {}, "rounds"),
    el("th", {}, "messages"), el("th", {}, "bytes"), el("th", {}, "seconds")));
  for (const [name, p] of Object.entries(c.phases))
    t.appendChild(el("tr", {}, el("td", {}, name), el("td", {}, p.rounds), el("td", {}, num(p.messages)),
      el("td", {}, num(p.bytes)), el("td", {}, (+p.seconds).toFixed(4))));
  t.appendChild(el("tr", {}, el("th", {}, "total"), el("th", {}, c.rounds), el("th", {}, num(c.messages)),
    el("th", {}, num(c.payload_bytes)), el("th", {}, (+c.seconds).toFixed(4))));
  const box = $("cost");
  box.appendChild(t);
  const rows = D.lanes.filter((p) => p !== -2 && (p === -1 || D.parties.some((q) => q.party === p)));
  if (!rows.length) return;
  const b = el("table", {id: "per-party"}, el("tr", {}, el("th", {}, "party"), el("th", {}, "bytes sent"),
    el("th", {}, "bytes received")));
  const key = (p) => p === -1 ? "dealer" : String(p);
  for (const p of rows)
    b.appendChild(el("tr", {"data-party": p}, el("td", {}, who(p)), el("td", {}, num(c.bytes_sent[key(p)] || 0)),
      el("td", {}, num(c.bytes_received[key(p)] || 0))));
  const o = D.others;
  if (o) b.appendChild(el("tr", {"data-party": "others"}, el("td", {}, num(o.count) + " other parties"),
    el("td", {title: "total " + num(o.sent[2])}, range(o.sent) + " each"),
    el("td", {title: "total " + num(o.received[2])}, range(o.received) + " each")));
  box.append(b);
}
function partyCards() {
  const box = $("parties");
  for (const p of D.parties) {
    const mine = D.published.filter((v) => v.parties.includes(p.party));
    const card = el("div", {cls: "card", id: "party-" + p.party}, el("b", {}, p.label),
      el("div", {}, "sent " + num(p.sent_messages) + " messages, " + bytes(p.sent_bytes)),
      el("div", {}, "saw " + num(p.received_messages) + " messages, " + bytes(p.received_bytes)),
      el("div", {cls: "hint"}, "learned (its output):"), el("div", {cls: "val"}, fmtValue(p.output)));
    if (mine.length) {
      card.appendChild(el("div", {cls: "hint"}, "published:"));
      for (const v of mine) card.appendChild(el("div", {cls: "val"}, v.tag + " = " + fmtValue(v.value)));
    }
    box.appendChild(card);
  }
  if (D.others) box.appendChild(el("div", {cls: "card", id: "party-others"}, el("b", {}, "… and " +
    num(D.others.count) + " more parties"), el("div", {}, "each sent " + range(D.others.sent, " B") +
    ", saw " + range(D.others.received, " B")), el("div", {cls: "hint"}, "every party's output and traffic " +
    "is in the JSON form of this transcript")));
}
function laneHeader() {
  const h = $("lanes");
  for (const p of D.lanes) h.appendChild(el("div", {cls: p === -1 ? "dealer" : (p === -2 ? "others" : ""),
    title: p === -2 ? "all other parties" : who(p)}, p === -2 ? "others" : who(p)));
}
function drawMessage(i) {
  const m = M(i), a = x(m.from), b = x(m.to);
  const row = el("div", {cls: "msg", id: "m" + idx(i), "data-index": idx(i), "data-round": m.round,
    "data-from": m.from, "data-to": m.to, "data-tag": m.tag, "data-bytes": m.payload, "data-wire": m.wire});
  row.appendChild(el("span", {cls: "n"}, "#" + idx(i)));
  const left = Math.min(a, b) / L * 100, width = Math.abs(a - b) / L * 100;
  const cls = "arrow " + (a === b ? "self" : (b > a ? "ltr" : "rtl")) + (m.from === -1 ? " dealer" : "");
  row.appendChild(el("div", {cls, style: "left:" + left + "%;width:" + width + "%"}));
  const ends = (laneOf.has(m.from) && laneOf.has(m.to)) ? "" : who(m.from) + " → " + who(m.to) + "  ";
  const r = looksRandom(m);
  const mid = (a + b) / 2 / L;  // labels near an edge are anchored to the arrow's end, not centred
  const at = mid < 0.2 ? "left:" + (Math.min(a, b) / L * 100) + "%;transform:none" :
    mid > 0.8 ? "left:auto;right:" + (100 - Math.max(a, b) / L * 100) + "%;transform:none" :
    "left:" + (mid * 100) + "%";
  const lbl = el("span", {cls: "lbl", style: at},
    ends, el("span", {cls: "t"}, m.tag), el("span", {cls: "b"}, " · " + bytes(m.payload)),
    m.pub ? el("span", {cls: "badge pub"}, "public") :
      (r ? el("span", {cls: "badge rnd"}, r === true ? "random" : "partly random") : null));
  row.appendChild(lbl);
  row.addEventListener("click", () => select(i));
  return row;
}
const CHUNK = 400;  // rows drawn at a time in one round; "show more" draws the next
function fillRound(det, upto = -1) {  // draw the round's rows, at least up to message upto
  let body = det.querySelector(".body");
  if (!body) {
    body = el("div", {cls: "body"});
    for (let k = 0; k < L; k++)
      body.appendChild(el("div", {cls: "lane", style: "left:calc(56px + (100% - 56px) * " + ((k + 0.5) / L) + ")"}));
    det.appendChild(body);
    det.dataset.drawn = det.dataset.lo;
  }
  const hi = +det.dataset.hi;
  let i = +det.dataset.drawn;
  if (i >= hi) return;
  const stop = Math.min(hi, Math.max(i + CHUNK, upto + 1));
  const old = body.querySelector(".more");
  if (old) old.remove();
  for (; i < stop; i++) body.appendChild(drawMessage(i));
  det.dataset.drawn = i;
  const om = D.omitted[det.dataset.round];
  if (i >= hi && om) body.appendChild(el("div", {cls: "hint omitted", style: "padding:4px 0"}, "… and " +
    num(om[0]) + " more messages of this round (" + bytes(om[1]) + ") not drawn in this page, which keeps " +
    "the first of each round; the JSON form of the transcript has every message."));
  if (i < hi) {
    const more = el("button", {cls: "more"}, "show " + num(Math.min(CHUNK, hi - i)) + " more of " +
      num(hi - i) + " remaining in this round");
    more.addEventListener("click", () => fillRound(det));
    body.appendChild(more);
  }
}
function rounds() {
  const box = $("rounds");
  let lo = 0;
  while (lo < msgs.length) {
    let hi = lo; const r = msgs[lo][0], tags = new Map(), phases = new Set(); let total = 0;
    while (hi < msgs.length && msgs[hi][0] === r) { const t = D.tags[msgs[hi][3]];
      tags.set(t, (tags.get(t) || 0) + 1); phases.add(D.phases[msgs[hi][4]]); total += msgs[hi][5]; hi++; }
    const om = D.omitted[r] || [0, 0], count = hi - lo + om[0];
    total += om[1];
    const top = [...tags.entries()].sort((p, q) => q[1] - p[1]).slice(0, 3)
      .map(([t, c]) => c > 1 ? t + " ×" + num(c) : t).join(", ") + (tags.size > 3 ? ", …" : "");
    const det = el("details", {cls: "round", "data-round": r, "data-lo": lo, "data-hi": hi},
      el("summary", {}, "Round " + r + " — " + num(count) + (count === 1 ? " message, " : " messages, ") +
        bytes(total) + " — " + top + " ", el("span", {cls: "phase"}, "(" + [...phases].join(", ") + ")")));
    det.addEventListener("toggle", () => { if (det.open && !det.dataset.drawn) fillRound(det); });
    if (!D.collapsed) { det.open = true; fillRound(det); }
    box.appendChild(det);
    lo = hi;
  }
  if (!msgs.length) box.appendChild(el("div", {cls: "hint", style: "padding:10px"}, "No messages."));
}
function arrayRows(m) {
  const t = el("table", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "dtype"), el("th", {}, "shape"),
    el("th", {}, "bytes"), el("th", {title: "byte entropy, bits per byte, of the maximum"}, "entropy")));
  m.head.forEach((h, k) => { const e = m.ent ? m.ent[k] : -1, r = randomness(h[2], e);
    t.appendChild(el("tr", {}, el("td", {}, k), el("td", {}, dtname(h[0])), el("td", {}, shape(h[1])),
      el("td", {}, num(h[2])), el("td", {title: "bits per byte (uniform bytes: " +
        Math.min(8, Math.log2(Math.max(h[2], 1))).toFixed(2) + ")"},
        r === null ? "—" : (e / 100).toFixed(2) + "/" + Math.min(8, Math.log2(h[2])).toFixed(2) +
          (r >= D.threshold ? " random" : " low")))); });
  return t;
}
function select(i, scroll = true) {
  document.querySelectorAll(".msg.sel").forEach((e) => e.classList.remove("sel"));
  const m = M(i), box = $("detail");
  const row = $("m" + idx(i));
  if (row) { row.classList.add("sel"); if (scroll) row.scrollIntoView({block: "nearest"}); }
  box.replaceChildren(el("h2", {}, "Message #" + idx(i)),
    el("dl", {}, el("dt", {}, "tag"), el("dd", {}, m.tag), el("dt", {}, "from"), el("dd", {}, who(m.from)),
      el("dt", {}, "to"), el("dd", {}, who(m.to)), el("dt", {}, "round"), el("dd", {}, m.round),
      el("dt", {}, "phase"), el("dd", {}, m.phase), el("dt", {}, "payload"), el("dd", {}, bytes(m.payload)),
      el("dt", {}, "on the wire"), el("dd", {}, bytes(m.wire) + " (header " + bytes(m.wire - m.payload) + ")")));
  if (m.head) box.appendChild(arrayRows(m));
  else box.appendChild(el("p", {cls: "hint"}, "No header recorded for this message."));
  if (m.pub) box.appendChild(el("div", {cls: "public"}, el("b", {}, "Public payload"),
    el("div", {cls: "val"}, m.pub.map(fmtValue).join("\n"))));
  else { const r = looksRandom(m);
    box.appendChild(el("div", {cls: "secret"}, "Secret payload: not written to this page. " +
      (r === true ? "Its bytes look uniformly random (entropy close to the maximum): a share, a seed or " +
        "a masked value, independent of any input." : r === "partly" ? "Some of its arrays look uniformly " +
        "random (shares, seeds); the others are structured (shapes, counts): see the entropy column." :
        r === false ? "Its bytes do not look uniformly random (low entropy): structured data such as " +
        "shapes or counts." : "Too small to judge its randomness."))); }
  for (const p of publishedByTag.get(m.tag) || [])
    box.appendChild(el("div", {cls: "public", style: "margin-top:8px"}, el("b", {}, "Value published at this step by " +
      p.parties.map(who).join(", ") + " (round " + p.round + ")"), el("div", {cls: "val"}, fmtValue(p.value))));
  box.appendChild(el("p", {cls: "hint"}, "↑/↓ to step through messages."));
  box.dataset.index = i;
}
function openRoundOf(i) {
  for (const det of document.querySelectorAll("details.round"))
    if (+det.dataset.lo <= i && i < +det.dataset.hi) { det.open = true; fillRound(det, i); }
}
function tools() {
  $("expand").addEventListener("click", () => document.querySelectorAll("details.round")
    .forEach((d) => { d.open = true; if (!d.dataset.drawn) fillRound(d); }));
  $("collapse").addEventListener("click", () => document.querySelectorAll("details.round")
    .forEach((d) => { d.open = false; }));
  $("find").addEventListener("keydown", (ev) => { if (ev.key !== "Enter") return;
    const q = ev.target.value.trim().toLowerCase(); if (!q) return;
    const start = (+($("detail").dataset.index ?? -1)) + 1;
    for (let k = 0; k < msgs.length; k++) { const i = (start + k) % msgs.length, m = M(i);
      if ((m.tag + " " + who(m.from) + " " + who(m.to)).toLowerCase().includes(q)) {
        openRoundOf(i); select(i); return; } } });
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" || !msgs.length) return;
    const cur = +($("detail").dataset.index ?? -1);
    const next = ev.key === "ArrowDown" ? cur + 1 : ev.key === "ArrowUp" ? cur - 1 : null;
    if (next === null || next < 0 || next >= msgs.length) return;
    ev.preventDefault(); openRoundOf(next); select(next); });
}
function fromHash() {  // page.html#msg=12 opens message 12 (#show=12: the same, without scrolling)
  const hit = /^#(msg|show)=(\d+)$/.exec(location.hash);
  const i = !hit ? -1 : D.index ? D.index.indexOf(+hit[2]) : +hit[2];
  if (i >= 0 && i < msgs.length) { openRoundOf(i); select(i, hit[1] === "msg"); }
}
header(); costTables(); partyCards(); laneHeader(); rounds(); tools(); fromHash();
window.addEventListener("hashchange", fromHash);
"""

"""Render an event log as one self-contained HTML page: one lane per node.

Each lane shows when the node was up (green band), paused (grey band), its
client operations (bars per time bucket: ok grey, error orange, dropped
connection red), faults (red marks), lifecycle events (blue) and invariant
violations (purple diamonds). Hovering shows the event. Below the lanes a
table lists every event that is not a client operation. No scripts or
resources are loaded from anywhere: the file is the whole page.
"""

from __future__ import annotations

import html
import json

from frtrio.core.events import parse_ts_utc, read_events

WIDTH = 1200
LEFT = 90
LANE_H = 56
BUCKET_PX = 3


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _short(d: dict, n: int = 160) -> str:
    s = json.dumps(d, sort_keys=False)
    return s if len(s) <= n else s[: n - 3] + "..."


def render(events: list[dict]) -> str:
    if not events:
        return "<!doctype html><title>empty timeline</title><p>no events</p>"
    t0 = parse_ts_utc(events[0]["ts_utc"])
    ts = [(parse_ts_utc(e["ts_utc"]) - t0) / 1e6 for e in events]
    t_end = max(ts) or 1e-6
    lanes: dict[str, None] = {}
    for e in events:
        if e["node"]:
            lanes.setdefault(e["node"], None)
    lanes.setdefault("sim", None)
    lane_names = list(lanes)
    idx = {n: i for i, n in enumerate(lane_names)}
    plot_w = WIDTH - LEFT - 10
    height = 30 + LANE_H * len(lane_names) + 30

    def x(t: float) -> float:
        return LEFT + plot_w * (t / t_end)

    svg = []
    # lifecycle bands
    up_since: dict[str, float] = {}
    bands = []
    for e, t in zip(events, ts):
        n, ev = e["node"], e["event"]
        if ev == "node.ready":
            up_since[n] = t
        elif ev in ("node.stopped", "node.exit") and n in up_since:
            bands.append((n, up_since.pop(n), t, "#dff3df", "up"))
        elif ev == "fault.pause":
            bands.append((n, t, min(t_end, t + float(e["detail"].get("seconds", 0))),
                          "#d5d5d5", "paused"))
    for n, s in up_since.items():
        bands.append((n, s, t_end, "#dff3df", "up"))
    for n, a, b, color, label in bands:
        y = 30 + LANE_H * idx.get(n, idx["sim"])
        svg.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s '
                   '%.6f-%.6f s</title></rect>'
                   % (x(a), y + 4, max(1.0, x(b) - x(a)), LANE_H - 8, color, _esc(n), label, a, b))
    # partitions span every lane
    cut_at = None
    for e, t in zip(events, ts):
        if e["event"] == "fault.partition" and cut_at is None:
            cut_at = (t, e)
        elif e["event"] == "fault.heal" and cut_at is not None:
            a, pe = cut_at
            svg.append('<rect x="%.1f" y="22" width="%.1f" height="6" fill="#e06666">'
                       '<title>partition %.6f-%.6f s %s</title></rect>'
                       % (x(a), max(1.0, x(t) - x(a)), a, t, _esc(_short(pe["detail"]))))
            cut_at = None
    # client operations, bucketed
    buckets: dict[tuple, list] = {}
    for e, t in zip(events, ts):
        if e["event"] != "client.op":
            continue
        b = int((x(t) - LEFT) // BUCKET_PX)
        key = (e["node"] or "sim", b)
        c = buckets.get(key)
        if c is None:
            c = buckets[key] = [0, 0, 0]
        o = e["outcome"]
        c[0 if o == "ok" else 1 if o == "error" else 2] += 1
    peak = max((sum(c) for c in buckets.values()), default=1)
    for (n, b), (ok, er, dc) in buckets.items():
        y0 = 30 + LANE_H * idx[n] + LANE_H - 6
        xx = LEFT + b * BUCKET_PX
        h_total = (LANE_H - 14) * (sum((ok, er, dc)) / peak) ** 0.5
        parts = [(ok, "#9a9a9a"), (er, "#f0a030"), (dc, "#d03030")]
        tot = ok + er + dc
        for cnt, color in parts:
            if not cnt:
                continue
            h = h_total * cnt / tot
            y0 -= h
            svg.append('<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s: '
                       '%d ok, %d error, %d dropped</title></rect>'
                       % (xx, y0, BUCKET_PX - 1 or 1, h, color, _esc(n), ok, er, dc))
    # point events
    for e, t in zip(events, ts):
        ev = e["event"]
        if ev == "client.op":
            continue
        n = e["node"] or "sim"
        y = 30 + LANE_H * idx[n] + LANE_H // 2
        tip = _esc("%.6f s %s %s %s %s" % (t, ev, e["outcome"], e["reason_code"],
                                            _short(e["detail"])))
        xx = x(t)
        if ev == "check.violation":
            svg.append('<path d="M%.1f %d l7 -9 l7 9 l-7 9 z" fill="#8e24aa" stroke="#000">'
                       '<title>%s</title></path>' % (xx - 7, y, tip))
        elif ev.startswith("fault."):
            sym = "X" if ev == "fault.kill" else "R" if ev == "fault.restart" else ev[6]
            svg.append('<g><line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#c00" '
                       'stroke-width="2"/><text x="%.1f" y="%d" font-size="10" fill="#c00">%s'
                       '</text><title>%s</title></g>'
                       % (xx, xx, y - 16, y + 16, xx + 2, y - 8, _esc(sym), tip))
        elif ev.startswith("node.") or ev.startswith("sim."):
            svg.append('<circle cx="%.1f" cy="%d" r="3" fill="#2060c0"><title>%s</title>'
                       '</circle>' % (xx, y + 12, tip))
        else:
            svg.append('<circle cx="%.1f" cy="%d" r="2.5" fill="#444"><title>%s</title>'
                       '</circle>' % (xx, y + 12, tip))
    # axes and labels
    for i, n in enumerate(lane_names):
        y = 30 + LANE_H * i
        svg.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#ccc"/>'
                   % (LEFT, WIDTH - 10, y + LANE_H, y + LANE_H))
        svg.append('<text x="6" y="%d" font-size="13" font-weight="bold">%s</text>'
                   % (y + LANE_H // 2 + 4, _esc(n)))
    ticks = 10
    for k in range(ticks + 1):
        t = t_end * k / ticks
        svg.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%.3fs</text>'
                   % (x(t), height - 8, t))
        svg.append('<line x1="%.1f" x2="%.1f" y1="28" y2="%d" stroke="#eee"/>'
                   % (x(t), x(t), height - 22))

    head = events[0]
    start = head.get("detail", {})
    end = next((e for e in reversed(events) if e["event"] == "sim.end"), None)
    viol = [e for e in events if e["event"] == "check.violation"]
    rows = []
    for e, t in zip(events, ts):
        if e["event"] == "client.op":
            continue
        if len(rows) >= 3000:
            rows.append("<tr><td colspan=6>... (truncated)</td></tr>")
            break
        cls = ' class="v"' if e["event"] == "check.violation" else (
            ' class="f"' if e["event"].startswith("fault.") else "")
        rows.append("<tr%s><td>%.6f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                    "</tr>" % (cls, t, _esc(e["node"]), _esc(e["event"]), _esc(e["outcome"]),
                               _esc(e["reason_code"]), _esc(_short(e["detail"], 300))))
    summary = [
        "scenario <b>%s</b>, seed <b>%s</b>, mode %s" % (
            _esc(head.get("test_or_scenario_id")), _esc(head.get("seed")), _esc(head.get("mode"))),
        "%d events over %.6f virtual seconds" % (len(events), t_end),
        "replay: <code>%s</code>" % _esc(head.get("replay_cmd", "")),
    ]
    if start.get("trio"):
        summary.append("trio %s, Python %s" % (_esc(start.get("trio")), _esc(start.get("python"))))
    if end is not None:
        summary.append("outcome: <b>%s</b> %s" % (_esc(end["outcome"]),
                                                  _esc(_short(end["detail"], 400))))
    if viol:
        summary.append('<span style="color:#8e24aa"><b>%d violation(s)</b>: %s</span>'
                       % (len(viol), _esc("; ".join(v["reason_code"] for v in viol[:5]))))
    return """<!doctype html>
<html><head><meta charset="utf-8"><title>frtrio sim timeline: %s seed %s</title>
<style>
body{font-family:sans-serif;margin:16px;color:#222}
table{border-collapse:collapse;font-size:12px;margin-top:12px}
td,th{border:1px solid #ddd;padding:2px 6px;vertical-align:top}
tr.v{background:#f3e0f7}tr.f{background:#fbe9e9}
code{background:#f4f4f4;padding:1px 4px}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
</style></head><body>
<h2>frtrio simulation timeline</h2>
<p>%s</p>
<div class="legend"><span style="color:#3a3">&#9632; node up</span>
<span style="color:#999">&#9632; paused / client ops ok</span>
<span style="color:#f0a030">&#9632; error replies</span>
<span style="color:#d03030">&#9632; dropped calls, faults</span>
<span style="color:#2060c0">&#9679; lifecycle</span>
<span style="color:#8e24aa">&#9670; violation</span></div>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" style="border:1px solid #ccc">
%s
</svg>
<table><tr><th>t (s)</th><th>node</th><th>event</th><th>outcome</th><th>reason</th><th>detail</th></tr>
%s
</table></body></html>
""" % (_esc(head.get("test_or_scenario_id")), _esc(head.get("seed")), "<br>".join(summary),
       WIDTH, height, "\n".join(svg), "\n".join(rows))


def render_file(path: str, out: str) -> int:
    events = read_events(path)
    with open(out, "w", encoding="utf-8") as f:
        f.write(render(events))
    return len(events)

"""Cluster decisions leave structured events (DESIGN.md §7) when the event log is on."""

import json
import os
import time

from support import ServerProc


def test_c03_c14_cluster_decisions_are_logged_as_events():
    p = ServerProc("frtrio", ["--cluster-enabled", "yes"])
    log = os.path.join(p.dir, "events.jsonl")
    p.args += ["--frtrio-event-log", log]
    p.start()
    try:
        c = p.conn()
        assert c.cmd("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"+OK\r\n"
        assert c.cmd("CLUSTER", "DELSLOTS", "12182") == b"+OK\r\n"
        assert c.cmd("GET", "foo") == b"-CLUSTERDOWN Hash slot not served\r\n"
        assert c.cmd("CLUSTER", "BUMPEPOCH").startswith(b"+BUMPED")
        c.close()
        deadline = time.monotonic() + 5
        codes = set()
        while time.monotonic() < deadline:
            with open(log) as f:
                recs = [json.loads(line) for line in f if line.strip()]
            codes = {r["reason_code"] for r in recs}
            if {"cluster.redirect", "cluster.slot_owner_state_update", "cluster.epoch_changed"} <= codes:
                break
            time.sleep(0.1)
        assert {"cluster.redirect", "cluster.slot_owner_state_update", "cluster.epoch_changed"} <= codes
        red = [r for r in recs if r["reason_code"] == "cluster.redirect"][0]
        assert red["outcome"] == "rejected" and red["packet_id"] == "FR-P2C-007"
        assert red["detail"]["slot"] == 12182
    finally:
        p.cleanup()

"""Failure detection, epoch collisions and failover votes on the cluster
bus (pure): PFAIL -> FAIL by a majority of masters' reports within twice
the node timeout, clearing FAIL, Redis's configEpoch collision rule, and
the master side of a failover election (grant or deny a vote). A mixin of
``BusCore`` (cluster/gossip.py). Facts: ``spec/cluster-bus.md`` §8-§10.
"""

from __future__ import annotations

from frtrio.cluster import bus_codec as bc
from frtrio.cluster.bus_types import FAILOVER_AUTH_ACK
from frtrio.cluster.slots import CLUSTER_SLOTS
from frtrio.cluster.state import ClusterNode
from frtrio.core.effects import Broadcast, SendToNode


def _bitmap_test(bm: bytes, j: int) -> bool:
    return bool(bm[j >> 3] & (1 << (j & 7)))


class FailureDetection:
    """Failure reports, FAIL, epochs and votes for ``BusCore``."""

    # --- failure detection ------------------------------------------------------------

    def failure_reports_count(self, n: ClusterNode, now: int) -> int:
        limit = now - 2 * self.node_timeout()
        for rid in [r for r, t in n.fail_reports.items() if t < limit]:
            del n.fail_reports[rid]
        return len(n.fail_reports)

    def mark_failing_if_needed(self, n: ClusterNode, now: int) -> None:
        st = self.st
        needed = st.size // 2 + 1
        if not n.has("fail?"):
            return
        if n.has("fail"):
            return
        failures = self.failure_reports_count(n, now)
        if st.myself.is_master:
            failures += 1
        if failures < needed:
            return
        n.clear_flag("fail?")
        n.set_flag("fail")
        n.fail_time = now
        self.core.bus_effects.append(Broadcast(self.fail_message(n.id)))
        self._save(update=True)
        self.emit("cluster.node_fail", outcome="quorum", node=n.id, reports=failures)

    def clear_failure_if_needed(self, n: ClusterNode, now: int) -> None:
        if n.is_replica or n.numslots == 0:
            n.clear_flag("fail")
            self._save(update=True)
            self.emit("cluster.node_fail_cleared", node=n.id, outcome="reachable")
        elif n.is_master and n.numslots > 0 and now - n.fail_time > 2 * self.node_timeout():
            n.clear_flag("fail")
            self._save(update=True)
            self.emit("cluster.node_fail_cleared", node=n.id, outcome="timeout_elapsed")

    # --- epochs -------------------------------------------------------------------

    def handle_epoch_collision(self, sender: ClusterNode) -> None:
        st = self.st
        me = st.myself
        if sender.config_epoch != me.config_epoch or not sender.is_master or not me.is_master:
            return
        if sender.id <= me.id:
            return
        st.current_epoch += 1
        me.config_epoch = st.current_epoch
        self._save(fsync=True)
        self.core.save_now_requested = True
        self.emit("cluster.config_epoch_collision", outcome="bumped", node=sender.id,
                  config_epoch=me.config_epoch)

    # --- votes ---------------------------------------------------------------------------

    def _handle_auth_request(self, sender, m, now) -> list:
        """Grant or deny a failover vote (Redis's clusterSendFailoverAuthIfNeeded)."""
        st = self.st
        me = st.myself
        master = st.nodes.get(sender.master_id or "")
        if me.is_replica or me.numslots == 0:
            return []

        def denied(why: str) -> list:
            # Redis logs these as "Failover auth denied to <node>: <why>"
            self.emit("cluster.failover_vote", outcome="denied", node=sender.id, why=why,
                      epoch=m.current_epoch)
            return []

        if m.current_epoch < st.current_epoch:
            return denied("reqEpoch (%d) < curEpoch(%d)" % (m.current_epoch, st.current_epoch))
        if st.last_vote_epoch == st.current_epoch:
            return denied("already voted for epoch %d" % st.current_epoch)
        force = bool(m.mflags & bc.MF_FORCEACK)
        if not sender.is_replica:
            return denied("it is a master node")
        if master is None:
            return denied("I don't know its master")
        if not master.has("fail") and not force:
            return denied("its master is up")
        if now - master.voted_time < 2 * self.node_timeout():
            return denied("can't vote about this master before %d milliseconds"
                          % (2 * self.node_timeout() - (now - master.voted_time)))
        for j in range(CLUSTER_SLOTS):
            if not _bitmap_test(m.myslots, j):
                continue
            owner = st.slots[j]
            if owner is None or self.slot_unclaimed(j):
                continue
            if owner.config_epoch <= m.config_epoch:
                continue
            return denied("slot %d epoch (%d) > reqEpoch (%d)"
                          % (j, owner.config_epoch, m.config_epoch))
        st.last_vote_epoch = st.current_epoch
        master.voted_time = now
        self._save(fsync=True)
        self.emit("cluster.failover_vote", outcome="granted", node=sender.id,
                  epoch=st.current_epoch)
        return [SendToNode(sender.id, self.header(FAILOVER_AUTH_ACK))]

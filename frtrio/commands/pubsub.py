"""Pub/Sub commands (Redis 7.0 semantics; the registry is ``frtrio.core.pubsub``).

(UN)SUBSCRIBE and friends answer one push message per channel, so a single
command can produce several replies: they are pushed (``Client.push``) rather
than returned, which also lets them through CLIENT REPLY OFF as in Redis, and
inside MULTI/EXEC gives the same oddly counted EXEC array. The counts in these
messages are Redis's: channels + patterns for (P)(UN)SUBSCRIBE, shard channels
only for S(UN)SUBSCRIBE.

SPUBLISH / SSUBSCRIBE work on this node's shard channels; cluster routing is
the router's business. In cluster mode PUBLISH is also broadcast on the bus
and SPUBLISH sent to the shard's other nodes; messages received on the bus are
delivered locally (``PubSub.deliver_from_bus``).
"""

from __future__ import annotations

from frtrio.core.client import F
from frtrio.commands.table import command
from frtrio.commands.util import err
from frtrio.core.effects import ReplOnly
from frtrio.protocol.reply import Push, Status


def _ps(c):
    ps = c.server.pubsub
    if ps is None:  # a server built without the registry (unit tests)
        from frtrio.core.pubsub import PubSub

        ps = c.server.pubsub = PubSub(c.server)
    return ps


def _out(c, msgs: list):
    """Send the confirmations as pushes: like Redis (CLIENT_PUSHING) they
    go out even under CLIENT REPLY OFF/SKIP."""
    from frtrio.core.engine import NO_REPLY

    for m in msgs:
        c.push(Push(m))
    return NO_REPLY


@command("subscribe")
def cmd_subscribe(c, argv):
    ps = _ps(c)
    msgs = []
    for ch in argv[1:]:
        ps.subscribe(c, ch)
        msgs.append([b"subscribe", ch, c.subscription_count()])
    return _out(c, msgs)


@command("psubscribe")
def cmd_psubscribe(c, argv):
    ps = _ps(c)
    msgs = []
    for pat in argv[1:]:
        ps.psubscribe(c, pat)
        msgs.append([b"psubscribe", pat, c.subscription_count()])
    return _out(c, msgs)


@command("ssubscribe")
def cmd_ssubscribe(c, argv):
    if c.flags & F.IN_EXEC:
        raise err("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    ps = _ps(c)
    msgs = []
    for ch in argv[1:]:
        ps.ssubscribe(c, ch)
        msgs.append([b"ssubscribe", ch, len(c.ssubscriptions)])
    return _out(c, msgs)


def _unsubscribe(c, argv, kind: bytes, table: dict, remove, count):
    """UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE: one confirmation per name
    (all current ones when none are given; one with a nil name when there
    are none)."""
    msgs = []
    names = argv[1:] if len(argv) > 1 else list(table)
    for name in names:
        remove(c, name)
        msgs.append([kind, name, count()])
    if not msgs:
        msgs.append([kind, None, count()])
    return _out(c, msgs)


@command("unsubscribe")
def cmd_unsubscribe(c, argv):
    return _unsubscribe(c, argv, b"unsubscribe", c.subscriptions, _ps(c).unsubscribe,
                        c.subscription_count)


@command("punsubscribe")
def cmd_punsubscribe(c, argv):
    return _unsubscribe(c, argv, b"punsubscribe", c.psubscriptions, _ps(c).punsubscribe,
                        c.subscription_count)


@command("sunsubscribe")
def cmd_sunsubscribe(c, argv):
    return _unsubscribe(c, argv, b"sunsubscribe", c.ssubscriptions, _ps(c).sunsubscribe,
                        lambda: len(c.ssubscriptions))


def _bus_publish(c, ch: bytes, msg: bytes, shard: bool) -> None:
    """Cluster mode (Redis's clusterPropagatePublish): PUBLISH goes to every
    node over the bus, SPUBLISH to the other nodes of my shard."""
    core = c.server.cluster
    if core is not None and core.bus_core is not None:
        core.to_bus(*core.bus_core.publish_effects(ch, msg, shard))


@command("publish")
def cmd_publish(c, argv):
    n = _ps(c).publish(argv[1], argv[2])
    _bus_publish(c, argv[1], argv[2], False)
    if c.server.cluster is None:
        # to the replicas (their subscribers get it), not to the AOF, as
        # Redis's forceCommandPropagation(PROPAGATE_REPL) outside cluster mode
        c.server.propagate(c.dbid, ReplOnly([b"PUBLISH", argv[1], argv[2]]))
    return n


@command("spublish")
def cmd_spublish(c, argv):
    n = _ps(c).spublish(argv[1], argv[2])
    _bus_publish(c, argv[1], argv[2], True)
    return n


def _sub_syntax(name: str):
    return err(
        "ERR unknown subcommand or wrong number of arguments for '%s'. Try PUBSUB HELP." % name
    )


@command("pubsub|channels")
def cmd_pubsub_channels(c, argv):
    if len(argv) > 3:
        raise _sub_syntax(argv[1].decode("latin-1"))
    return _ps(c).channel_names(argv[2] if len(argv) == 3 else None)


@command("pubsub|shardchannels")
def cmd_pubsub_shardchannels(c, argv):
    if len(argv) > 3:
        raise _sub_syntax(argv[1].decode("latin-1"))
    return _ps(c).channel_names(argv[2] if len(argv) == 3 else None, shard=True)


@command("pubsub|numsub")
def cmd_pubsub_numsub(c, argv):
    ps = _ps(c)
    out = []
    for ch in argv[2:]:
        out.append(ch)
        out.append(ps.numsub(ch))
    return out


@command("pubsub|shardnumsub")
def cmd_pubsub_shardnumsub(c, argv):
    ps = _ps(c)
    out = []
    for ch in argv[2:]:
        out.append(ch)
        out.append(ps.shard_numsub(ch))
    return out


@command("pubsub|numpat")
def cmd_pubsub_numpat(c, argv):
    return _ps(c).pattern_count()


PUBSUB_HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]


@command("pubsub|help")
def cmd_pubsub_help(c, argv):
    return [Status(line) for line in PUBSUB_HELP]

"""Cluster bus message type numbers and their names (Redis 7.0)."""

PING, PONG, MEET, FAIL, PUBLISH, FAILOVER_AUTH_REQUEST, FAILOVER_AUTH_ACK, UPDATE, MFSTART, MODULE, PUBLISHSHARD = range(11)

TYPE_NAMES = {
    PING: "ping",
    PONG: "pong",
    MEET: "meet",
    FAIL: "fail",
    PUBLISH: "publish",
    FAILOVER_AUTH_REQUEST: "auth-req",
    FAILOVER_AUTH_ACK: "auth-ack",
    UPDATE: "update",
    MFSTART: "mfstart",
    MODULE: "module",
    PUBLISHSHARD: "publishshard",
}

#!/usr/bin/env python3
"""Record the command metadata of a running redis-server as a JSON fact file.

The metadata (name, arity, flags, key positions, ACL categories, tips, key
specs, subcommands) is what COMMAND INFO shows a client. frtrio serves the
same facts so that clients that read them (redis-py's cluster client,
redis-cli) see what they would see from redis-server 7.0. Free-text fields
(``notes``) are dropped.

Usage: scripts/gen_command_facts.py PORT > frtrio/commands/facts.json
"""
import json
import socket
import sys


def read_reply(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t in (b"+", b"-"):
        return {"s": rest.decode()} if t == b"+" else {"err": rest.decode()}
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if t == b"_":
        return None
    if t in (b"*", b"~"):
        items = [read_reply(f) for _ in range(int(rest))]
        return {"set": items} if t == b"~" else items
    if t == b"%":
        n = int(rest)
        return {"map": [[read_reply(f), read_reply(f)] for _ in range(n)]}
    raise ValueError(line)


def strip_notes(v):
    if isinstance(v, dict) and "map" in v:
        return {"map": [[k, strip_notes(x)] for k, x in v["map"] if k != "notes"]}
    if isinstance(v, dict) and "set" in v:
        return {"set": [strip_notes(x) for x in v["set"]]}
    if isinstance(v, list):
        return [strip_notes(x) for x in v]
    return v


def ask_resp3(port: int, request: bytes):
    """One inline request to the redis-server on 127.0.0.1:port, answered in
    RESP3 (HELLO 3 first): its parsed reply."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        f = s.makefile("rb")
        s.sendall(b"HELLO 3\r\n")
        read_reply(f)
        s.sendall(request + b"\r\n")
        return read_reply(f)


def main():
    cmds = ask_resp3(int(sys.argv[1]), b"COMMAND")
    cmds = sorted(cmds, key=lambda c: c[0])
    json.dump([strip_notes(c) for c in cmds], sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""RESTORE payloads the fuzzer (``scripts/fuzz dump``, ``scripts/fuzz-dump-diff``)
found, kept as regression tests, each side by side with redis-server 7.0.15.

Every payload is the DUMP body (type byte and object) as the fuzzer produced
it; ``payload()`` adds the RDB version and the CRC64 footer, so what is tested
is the object decoding, not the checksum. Each test asserts what a client
sees: the same RESTORE reply as Redis, no key left behind by a refused
RESTORE (and an existing key untouched by a refused RESTORE ... REPLACE), the
same data read back where Redis accepts, and the server still answering.
"""

from __future__ import annotations

import pytest

from frtrio.store import crc64, rdb_format, rdb_strings, ziplist

BAD = b"-ERR Bad data format\r\n"


def payload(body_hex: str) -> bytes:
    body = bytes.fromhex(body_hex) + rdb_format.RDB_VERSION.to_bytes(2, "little")
    return body + crc64.crc64(body).to_bytes(8, "little")


def _fixture_body(name: str) -> bytes:
    import os

    with open(os.path.join(os.path.dirname(__file__), "fixtures", "dump", "redis70-%s.bin" % name), "rb") as f:
        return f.read()[:-10]


def _stream_nodes(body: bytes):
    """(head, [node bytes], tail) of a stream DUMP body."""
    r = rdb_strings.Reader(body)
    r.byte()
    spans = []
    for _ in range(r.plain_length()):
        s = r.pos
        r.string()
        r.string()
        spans.append((s, r.pos))
    return body[: spans[0][0]], [body[s:e] for s, e in spans], body[spans[-1][1] :]


def _refused_alike(diff, p: bytes) -> None:
    """Both refuse with Bad data format, leave nothing, keep an existing key."""
    diff("DEL", "k", "old")
    assert diff("RESTORE", "k", "0", p) == BAD
    diff("EXISTS", "k")
    diff("SET", "old", "kept")
    assert diff("RESTORE", "old", "0", p, "REPLACE") == BAD
    assert diff("GET", "old") == b"$4\r\nkept\r\n"
    assert diff("PING") == b"+PONG\r\n"


# --- corruptions Redis 7.0 refuses with its default settings -----------------------

# A ziplist (RDB <= 9 zset) whose second entry's prevlen byte is 0x49, not 5:
# Redis validates converted ziplists deeply; frtrio loaded it.
ZSET_ZIPLIST_BAD_PREVLEN = "0c181800000015000000040000016d0303312e3549016e03f3ff"
# The same in a hash ziplist (prevlen 0x40 instead of 3).
HASH_ZIPLIST_BAD_PREVLEN = "0d161600000013000000040040016603017603016703f8ff"
# A zipmap whose header says 0xc5 pairs but holds 2.
ZIPMAP_BAD_COUNT = "090cc501660100760167010077ff"
# A quicklist (RDB_TYPE_LIST_QUICKLIST_2) of two PLAIN nodes of length 0.
QUICKLIST_EMPTY_NODES = "120201000100"


@pytest.mark.parametrize("body", [ZSET_ZIPLIST_BAD_PREVLEN, HASH_ZIPLIST_BAD_PREVLEN, ZIPMAP_BAD_COUNT,
                                  QUICKLIST_EMPTY_NODES],
                         ids=["zset-ziplist-prevlen", "hash-ziplist-prevlen", "zipmap-count",
                              "quicklist-empty-nodes"])
def test_fuzz_corrupt_payload_refused_like_redis(diff, body):
    _refused_alike(diff, payload(body))


def test_fuzz_ziplist_tail_offset_refused_like_redis(diff):
    # a valid 3-entry list ziplist whose tail offset points at the 2nd entry
    zl = bytearray(ziplist.zl_build([b"a", b"b", b"c"]))
    zl[4:8] = (int.from_bytes(zl[4:8], "little") - 3).to_bytes(4, "little")
    _refused_alike(diff, payload((bytes([rdb_format.T_LIST_ZIPLIST]) + rdb_strings.enc_string(bytes(zl), False)).hex()))


def test_fuzz_stream_duplicate_node_refused_like_redis(diff):
    head, nodes, tail = _stream_nodes(_fixture_body("stream-nodes"))
    _refused_alike(diff, payload((head + nodes[0] + nodes[0] + b"".join(nodes[2:]) + tail).hex()))


# --- a corruption only Redis's sanitize-dump-payload catches -----------------------

# A stream whose last entry is cut short by the end of its listpack (2 of 4
# field/value strings, no lp-count). Redis with its default settings accepts
# it and then crashes on XRANGE; frtrio loaded it as an entry with an odd
# field list that its own DUMP could not restore. frtrio now refuses it as
# Redis does with sanitize-dump-payload yes.
STREAM_TRUNCATED_ENTRY = (
    "130110000000000000000100000000000000013f3f000000180003010001010181660200010201000100018176"
    "020401020100010101817702040100010101df3f9c747c8167028178028168028179020801ff030200010100270300"
)


def test_fuzz_stream_truncated_entry_refused_like_sanitizing_redis(diff):
    diff("CONFIG", "SET", "sanitize-dump-payload", "yes")
    _refused_alike(diff, payload(STREAM_TRUNCATED_ENTRY))


def test_fuzz_stream_entry_lp_count_checked(diff):
    """An entry whose lp-count disagrees with its field count."""
    diff("CONFIG", "SET", "sanitize-dump-payload", "yes")
    b = _fixture_body("stream-simple")
    # the first entry's lp-count in the redis fixture is the byte 0x04 after "v" (field f, value v)
    i = b.index(bytes.fromhex("81760204"))  # "v", its backlen, lp-count 4
    bad = b[: i + 3] + b"\x05" + b[i + 4 :]
    _refused_alike(diff, payload(bad.hex()))


# --- odd payloads Redis loads, loaded alike ---------------------------------------


def test_fuzz_lzf_string_of_length_zero_loads_like_redis(diff):
    # an LZF string (0xc3) with compressed length 9 and uncompressed length 0
    # (0x40 0x00): Redis compares lzf_decompress()'s result (0 on failure)
    # with 0 and loads an empty string
    p = payload("00c3094000007878e0570001017878")
    diff("DEL", "k")
    assert diff("RESTORE", "k", "0", p) == b"+OK\r\n"
    assert diff("GET", "k") == b"$0\r\n\r\n"
    diff("STRLEN", "k")


def test_fuzz_encoded_length_byte_read_as_length_like_redis(diff):
    # an empty stream whose max-deleted ID is written with 0xff bytes (the
    # "encoded" length form): Redis reads them as the length 63
    p = payload("13000001010000ffff0000")
    diff("DEL", "k")
    assert diff("RESTORE", "k", "0", p) == b"+OK\r\n"
    diff("XLEN", "k")
    diff("XRANGE", "k", "-", "+")
    diff("XADD", "k", "1-1", "f", "v")  # not above the last ID (1-1)
    diff("XADD", "k", "5-1", "f", "v")
    diff("XINFO", "STREAM", "k")


def test_fuzz_stream_nodes_out_of_order_load_like_redis(diff):
    head, nodes, tail = _stream_nodes(_fixture_body("stream-nodes"))
    p = payload((head + nodes[1] + nodes[0] + b"".join(nodes[2:]) + tail).hex())
    diff("DEL", "k")
    assert diff("RESTORE", "k", "0", p) == b"+OK\r\n"
    diff("XRANGE", "k", "-", "+")
    diff("XREVRANGE", "k", "+", "-", "COUNT", "3")
    diff("XLEN", "k")
    diff("XADD", "k", "11-0", "f", "v")
    diff("XRANGE", "k", "9", "+")


# --- AOF manifest ------------------------------------------------------------------


def test_fuzz_manifest_with_empty_file_name_is_written_back_loadable():
    """``file "" seq 1 type b`` loads (Redis accepts an empty name too), and
    the manifest frtrio writes back for it loads again: the empty name is
    written quoted (it was written bare, giving a line of 5 words that the
    next start refused as an invalid manifest)."""
    from frtrio.persist.aof_manifest import Manifest

    m = Manifest.parse(b'file "" seq 1 type b\n', "appendonly.aof.manifest")
    text = m.render()
    assert text == b'file "" seq 1 type b\n'
    again = Manifest.parse(text, "appendonly.aof.manifest")
    assert again.base == ("", 1) and again.render() == text


# --- redis's own corrupt-dump payloads ------------------------------------------------


def _upstream_corrupt_payloads():
    import os

    path = os.path.join(os.path.dirname(__file__), "fixtures", "dump", "redis70-corrupt-dump.txt")
    with open(path) as f:
        rows = [line.split() for line in f if line[:1].isdigit()]
    return [(int(line), bytes.fromhex(hx)[:-10]) for line, hx in rows]


def test_fuzz_upstream_corrupt_dump_payloads_answered_like_sanitizing_redis(diff):
    """Every payload of Redis 7.0.15's corrupt-dump.tcl (CRC recomputed):
    frtrio answers RESTORE exactly as redis-server with sanitize-dump-payload
    yes (which those tests use to refuse them; without it redis-server
    crashes on several), and keeps serving. Two of them (stream listpacks
    with a wrong back length) frtrio used to load."""
    diff("CONFIG", "SET", "sanitize-dump-payload", "yes")
    cases = _upstream_corrupt_payloads()
    assert len(cases) > 60
    for line, body in cases:
        p = payload(body.hex())
        a = diff.f.cmd("RESTORE", "k", "0", p, "REPLACE")
        b = diff.r.cmd("RESTORE", "k", "0", p, "REPLACE")
        assert a == b, "corrupt-dump.tcl line %d: frtrio %r, redis %r" % (line, a, b)
    assert diff("PING") == b"+PONG\r\n"


def test_fuzz_upstream_corrupt_dump_payloads_never_break_frtrio():
    """The same payloads through the dump fuzz target's checks: refused
    cleanly, or loaded and then read and written with the commands of their
    type without an internal error."""
    import fuzz_targets as ft

    target = ft.DumpTarget()
    for line, body in _upstream_corrupt_payloads():
        target.run(body)

"""frtrio/core/cnum.py: one answer for C-style number parsing, as glibc and
Redis give it."""

from frtrio.core.cnum import atoi, cstr, scan_cursor, strtol


def test_atoi_is_glibc_int_cast_of_strtol():
    assert atoi(b"4294967297") == 1  # (int) 4294967297 on x86-64
    assert atoi(b"2147483648") == -2147483648
    assert atoi(b"99999999999999999999") == -1  # strtol saturates, then the cast
    assert atoi(b"  -12abc") == -12
    assert atoi(b"abc") == 0
    assert atoi(b"1\x002") == 1


def test_strtol_saturates_and_stops_at_the_first_non_digit():
    assert strtol(b"99999999999999999999") == 2**63 - 1
    assert strtol(b"-99999999999999999999") == -(2**63)
    assert strtol(b"\t+42\r\n") == 42


def test_scan_cursor_is_strtoul_over_the_whole_c_string():
    assert scan_cursor(b"") == 0
    assert scan_cursor(b"18446744073709551615") == 2**64 - 1
    assert scan_cursor(b"18446744073709551616") is None
    assert scan_cursor(b"-1") == 2**64 - 1
    assert scan_cursor(b" 1") is None
    assert scan_cursor(b"1x") is None
    assert scan_cursor(b"12\x00junk") == 12


def test_cstr_ends_at_nul():
    assert cstr(b"ab\x00cd") == b"ab"
    assert cstr(b"abcd") == b"abcd"

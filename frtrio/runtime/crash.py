"""Crash reports: what frtrio-server writes to its log before it dies.

Redis writes a bug report to its log when it crashes: on a fatal signal
(SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT), a failed assertion or a panic, and
``DEBUG SEGFAULT`` / ``DEBUG ASSERT`` / ``DEBUG PANIC`` provoke each on
purpose. Tools and tests look for the report's markers: the lines between
``REDIS BUG REPORT START`` and ``REDIS BUG REPORT END``, and the cause line
(``crashed by signal: N``, ``=== ASSERTION FAILED ===``, ``Guru
Meditation: ...``). frtrio writes the same markers, then what is useful for a
Python server: the Python stack of the main thread where it stopped, INFO and
CLIENT LIST. Then it dies the way Redis does: by the same signal re-raised
(so a core dump or a supervisor sees it), or for an assertion or a panic by
SIGABRT, or ``exit(1)`` with ``use-exit-on-panic yes``.

``crash-log-enabled no`` leaves out the stack and INFO sections, as Redis
leaves out its stack trace and INFO. A shell module: it installs signal
handlers and ends the process.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback

log = logging.getLogger("frtrio")

FATAL = (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT)
VERSION = "7.0.15"  # (the version INFO reports)


def _section(title: str, lines) -> None:
    log.warning("------ %s ------", title)
    for ln in lines:
        for part in str(ln).rstrip("\n").split("\n"):
            log.warning("%s", part)


def _details(node, frame=None) -> None:
    """The report's body after its cause line: Python stack, INFO, clients."""
    if node is not None and node.config.get("crash-log-enabled") == "no":
        return
    if frame is None:
        frame = sys._getframe(2)
    _section("PYTHON STACK (main thread)", traceback.format_stack(frame))
    if node is None:
        return
    from frtrio.commands.connection import client_info_line
    from frtrio.commands.info import info_sections, info_text

    srv = node.server
    try:
        _section("INFO OUTPUT", [info_text(srv, info_sections([b"all"])).replace("\r", "")])
        _section("CLIENT LIST OUTPUT", [client_info_line(c) for c in list(srv.clients.values())])
    except Exception as e:  # noqa: BLE001 - a crash report must end whatever happens
        log.warning("(the INFO section failed: %r)", e)


def _start() -> None:
    log.warning("")
    log.warning("=== REDIS BUG REPORT START: Cut & paste starting from here ===")


def _end() -> None:
    log.warning("=== REDIS BUG REPORT END. Make sure to include from START to END. ===")
    log.warning("frtrio crashed: please include this report when you report the problem.")
    for h in logging.getLogger("frtrio").handlers + logging.getLogger().handlers:
        try:
            h.flush()
        except Exception:  # noqa: BLE001
            pass


def _die_by(sig: int) -> None:
    """End the process by ``sig`` with its default action."""
    signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)  # (not reached: the signal's default action ends us)


def _die_after_panic(node) -> None:
    """After an assertion or a panic: exit(1) with use-exit-on-panic, else
    abort() (SIGABRT, without writing a second report)."""
    if node is not None and node.config.get("use-exit-on-panic") == "yes":
        sys.stdout.flush()
        os._exit(1)
    _die_by(signal.SIGABRT)


def on_signal(node, sig: int, frame) -> None:
    """A fatal signal arrived: the report, then death by that signal. (A
    Python handler does not see the signal's siginfo: si_code is given as 0,
    a signal sent by a process.)"""
    _start()
    log.warning("Redis %s crashed by signal: %d, si_code: 0", VERSION, sig)
    _details(node, frame)
    _end()
    _die_by(sig)


def crash(node, e) -> None:
    """The ``Crash`` effect (DEBUG SEGFAULT / ASSERT / PANIC)."""
    _start()
    if e.kind == "segfault":
        # Redis writes to a read-only page: SIGSEGV at that address
        log.warning("Redis %s crashed by signal: %d, si_code: %d", VERSION, signal.SIGSEGV, 2)
        log.warning("DEBUG SEGFAULT: frtrio raises SIGSEGV itself")
        _details(node)
        _end()
        _die_by(signal.SIGSEGV)
    elif e.kind == "assert":
        log.warning("=== ASSERTION FAILED ===")
        log.warning("==> debug:0 '%s' is not true", e.what)
        _details(node)
        _end()
        _die_after_panic(node)
    else:
        log.warning("------------------------------------------------")
        log.warning("!!! Software Failure. Press left mouse button to continue")
        log.warning("Guru Meditation: %s #debug:0", e.what)
        _details(node)
        _end()
        _die_after_panic(node)


def install(node) -> None:
    """Write a crash report on the fatal signals (a Python handler: it runs
    when the interpreter gets control back, so a fault inside C code still
    kills the process without one). ``crash-log-enabled`` is read when the
    signal comes."""

    def handler(sig, frame):
        on_signal(node, sig, frame)

    for sig in FATAL:
        try:
            signal.signal(sig, handler)
        except (OSError, ValueError):  # pragma: no cover - not the main thread
            pass

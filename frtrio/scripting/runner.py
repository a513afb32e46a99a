"""Running a script so that it can be suspended (for BUSY and SCRIPT KILL).

Redis runs a script inside the command and, once it has run longer than
``busy-reply-threshold``, re-enters its event loop from the Lua count hook
(``processEventsWhileBlocked``) to answer ``-BUSY`` to other clients and to
accept SCRIPT KILL / FUNCTION KILL / SHUTDOWN NOSAVE. A Python command cannot
re-enter Trio from a synchronous call, and stock Lua 5.1 cannot yield from a
hook. So every script runs on one dedicated worker thread, handed control
strictly in turns (a coroutine made of a thread and two locks): the caller
blocks while the script runs, the script blocks while the caller runs, so
there is never concurrency with the engine. When the hook finds the script
over the threshold it hands control back with ``SUSPENDED``; the command then
returns an effect (``RunScript``), the node marks itself busy (the gate
answers ``-BUSY``) and the client's shell resumes the script in slices,
checkpointing between them so every other task runs, until it finishes or is
killed. The Lua runtime is only ever touched from the worker thread while a
script is suspended (nothing else may call into Lua then: the gate sees to it).
"""

from __future__ import annotations

import threading

import outcome

DONE = "done"
SUSPENDED = "suspended"


class Runner:
    """A thread that runs one callable at a time, in turns with its caller."""

    def __init__(self):
        self._go = threading.Lock()
        self._back = threading.Lock()
        self._go.acquire()
        self._back.acquire()
        self._fn = None
        self._result = None  # the run's outcome (outcome.Value or outcome.Error)
        self._state = DONE
        self._thread = None
        self.in_worker = False

    def _loop(self):
        while True:
            self._go.acquire()
            fn = self._fn
            if fn is None:
                return
            self.in_worker = True
            # a return or an exception, handed to the caller's thread
            self._result = outcome.capture(fn)
            self.in_worker = False
            self._state = DONE
            self._fn = None
            self._back.release()

    def start(self, fn):
        """Run ``fn`` on the worker; returns (DONE, result) or (SUSPENDED, None)."""
        if self._thread is None:
            old = threading.stack_size(64 * 1024 * 1024)
            try:
                self._thread = threading.Thread(target=self._loop, name="frtrio-lua", daemon=True)
                self._thread.start()
            finally:
                threading.stack_size(old)
        self._fn = fn
        self._state = SUSPENDED
        self._go.release()
        self._back.acquire()
        return self._outcome()

    def resume(self):
        """Let a suspended run go on until it finishes or suspends again."""
        self._go.release()
        self._back.acquire()
        return self._outcome()

    def _outcome(self):
        if self._state == DONE:
            r, self._result = self._result, None
            return DONE, r.unwrap()
        return SUSPENDED, None

    def suspend(self):
        """Called on the worker (from the Lua hook): hand control back to the
        caller and wait to be resumed."""
        self._state = SUSPENDED
        self._back.release()
        self._go.acquire()

    def close(self):
        if self._thread is not None and self._state == DONE:
            self._fn = None
            self._go.release()
            self._thread.join(1)
            self._thread = None

"""SIGINT, SIGTERM and SIGHUP end a run the same way: its clusters are closed first.

``timeout``, CI cancellation, ``kill``, Kubernetes and a closed terminal send SIGTERM or
SIGHUP, not a Ctrl-C. Python's default for those kills the process at once, leaving a
Coiled cluster to bill until its no-client timeout. Importing the project (any flow,
under the command line, ``prefect run`` or a notebook) therefore makes all three raise
``Interrupted``, a ``KeyboardInterrupt``, so the code that closes clusters on a Ctrl-C
runs for each of them; the process then exits with status 128 + the signal, as a shell
reports a process ended by it. A handler set before the import still runs first.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ENDING = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)  # no SIGHUP on Windows

# Signals that arrived while closing was deferred; the first of them ends the process.
deferred: list[int] = []
# Signals that ended (or are ending) this process, first one first.
received: list[int] = []
# Signals whose Interrupted Python dropped: raised where a weakref callback or a __del__
# ran (an import's module lock dies at the end of every import), where no exception can
# propagate. ``check`` raises them again at the points before anything starts.
dropped: list[int] = []
SEND_AGAIN_AFTER_SECONDS = 0.05
_depth = 0  # nested deferrals: only the outermost raises
reported = False  # set by a caller that has told the user itself
settle_at_outcome = False  # set by ``python -m <package>``, whose process ends with the command


class Interrupted(KeyboardInterrupt):
    """A run ended by a signal; ``exit_status`` is what a shell reports for it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal that ended the run (a plain KeyboardInterrupt is a Ctrl-C)."""
    return interrupt.exit_status if isinstance(interrupt, Interrupted) else 128 + signal.SIGINT


def signal_name(interrupt: KeyboardInterrupt) -> str:
    return signal.Signals(interrupt.signum if isinstance(interrupt, Interrupted) else signal.SIGINT).name


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raising(chained: Callable[..., Any] | None) -> Callable[..., Any]:
    def end_run(signum: int, frame: Any) -> None:
        if signum in dropped:  # sent again: chained and noted the first time
            dropped.remove(signum)
        else:
            if chained is not None:
                chained(signum, frame)
            received.append(signum)
        raise Interrupted(signum)

    end_run.ends_run = True  # type: ignore[attr-defined]
    return end_run


def install() -> None:
    """Make each ending signal raise ``Interrupted``; idempotent, and only where Python allows it.

    Signal handlers belong to the main thread. A signal set to be ignored (``nohup``,
    a background job) stays ignored; a handler of the user's own is chained.
    """
    if not _in_main_thread():
        return
    for signum in ENDING:
        previous = signal.getsignal(signum)
        if previous in (signal.SIG_IGN, None) or getattr(previous, "ends_run", False):
            continue
        chained = previous if callable(previous) and previous is not signal.default_int_handler else None
        signal.signal(signum, _raising(chained))
    if not getattr(sys.unraisablehook, "notes_interrupts", False):
        sys.unraisablehook = _noting_dropped(sys.unraisablehook)


def _noting_dropped(previous: Callable[[Any], None]) -> Callable[[Any], None]:
    """An unraisable hook that keeps a dropped Interrupted for ``check`` (and prints no
    "Exception ignored" traceback for it), and sends the signal again a moment later: a run
    mid-compute checks nothing (a garbage collection's callback, entered all the time, is
    where a signal is dropped then). Everything else goes to ``previous``."""

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            signum = unraisable.exc_value.signum
            if signum not in dropped:
                dropped.append(signum)
                _send_again_soon(signum)
            return
        previous(unraisable)

    hook.notes_interrupts = True  # type: ignore[attr-defined]
    return hook


def _send_again_soon(signum: int) -> None:
    """The dropped signal, sent again to the main thread once the callback that dropped it has returned
    (a real signal: it also interrupts a main thread blocked waiting for the cluster)."""
    main = threading.main_thread().ident

    def send() -> None:
        time.sleep(SEND_AGAIN_AFTER_SECONDS)
        if signum in dropped:  # else check() or the handler raised it meanwhile
            if hasattr(signal, "pthread_kill") and main is not None:
                signal.pthread_kill(main, signum)
            else:  # Windows
                _thread.interrupt_main(signum)

    threading.Thread(target=send, name=f"{signal.Signals(signum).name} again", daemon=True).start()


def check() -> None:
    """Raise ``Interrupted`` for a signal whose exception Python dropped: called before anything
    starts, so no cluster starts after a signal, wherever it landed."""
    if dropped:
        signum = dropped[0]
        dropped.clear()
        raise Interrupted(signum)


@contextmanager
def deferral() -> Iterator[None]:
    """Note the ending signals during the block, then raise ``Interrupted`` for the first.

    Closing a cluster must not be cut short by an impatient second signal: it would
    leave the cluster running (and billing) until its idle timeout.
    """
    if not _in_main_thread():
        yield
        return
    global _depth
    previous = {signum: signal.getsignal(signum) for signum in ENDING}
    _depth += 1
    for signum, handler in previous.items():
        if handler not in (signal.SIG_IGN, None):
            signal.signal(signum, _note)
    try:
        yield
    finally:
        _depth -= 1
        for signum, handler in previous.items():
            if handler not in (signal.SIG_IGN, None):
                signal.signal(signum, handler)
    if deferred and not _depth:
        signum = deferred[0]
        deferred.clear()
        received.append(signum)
        raise Interrupted(signum)


def settle() -> None:
    """Ignore the ending signals from here to the process's exit, once a command has its outcome.

    At exit Python sets the handlers back to the default before it tears its modules down (a
    quarter of a second with Prefect and Dask loaded), so a SIGTERM then would kill the process
    without a word and turn a finished run's status into -15; one a moment earlier would be
    reported as if nothing had run. Only in a process that ends with the command (``settle_at_outcome``),
    and only our own handlers: a signal the caller ignores or handles itself stays as it was.
    """
    if not (settle_at_outcome and _in_main_thread()):
        return
    for signum in ENDING:
        if getattr(signal.getsignal(signum), "ends_run", False):
            signal.signal(signum, signal.SIG_IGN)


def _note(signum: int, frame: Any) -> None:
    if signum in dropped:
        dropped.remove(signum)
    deferred.append(signum)


@contextmanager
def held() -> Iterator[None]:
    """Keep the ending signals from acting during the block, in this thread and in all it starts.

    While a local cluster starts, an interrupt lands inside distributed's start-up and
    its exit hooks (``FATAL: exception not rethrown``, exit 134) before the session knows
    the cluster. Blocked in this thread, the signals are inherited blocked by the threads
    and processes started meanwhile, so the cluster's event loop thread and its worker
    processes never take a terminal's Ctrl-C (nor print tracebacks for it): their nanny
    closes them. A signal the kernel hands to an older thread instead is noted by the
    deferral; either way it acts when the block ends, by then on code that closes the cluster.
    """
    if not (_in_main_thread() and hasattr(signal, "pthread_sigmask")):
        with deferral():
            yield
        return
    from multiprocessing import resource_tracker

    with deferral():
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, ENDING)
        try:
            # multiprocessing's resource tracker, when it first starts, unblocks SIGINT and
            # SIGTERM in its caller: started here, it cannot undo the mask while the cluster's
            # processes are spawned, and it inherits SIGHUP blocked (a closed terminal would
            # kill it, and its successor would print a traceback per shared-memory name).
            resource_tracker.ensure_running()
            signal.pthread_sigmask(signal.SIG_BLOCK, ENDING)
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

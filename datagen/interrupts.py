"""SIGTERM is handled like Ctrl-C: a cluster scheduler's stop keeps what is done, and reruns resume."""

from __future__ import annotations

import signal

received: list[int] = []  # the signals that interrupted this process, newest last


def _interrupt(signum, frame) -> None:
    received.append(signum)
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Raise KeyboardInterrupt on SIGTERM (main thread only, as Python requires)."""
    signal.signal(signal.SIGTERM, _interrupt)


def exit_code() -> int:
    """128 + the signal, as a shell reports it: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (received[-1] if received else signal.SIGINT)

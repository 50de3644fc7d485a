"""How the ``facepaint-live`` command ends: one-line errors, SIGTERM handled as Ctrl-C, exit codes.

Kept apart from ``cli.py`` (the flags) so the contract reads in one place: bad input is one line
and exit code 2; Ctrl-C is 130 and SIGTERM 143, both after a clean stop that leaves no partial
file; anything else is a bug, reported in one line that names the pipeline stage it came from (exit
code 1; ``FACEPAINT_TRACEBACK=1`` prints the traceback too).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
import traceback
from collections.abc import Iterator
from typing import Any, NoReturn, TextIO

EXIT_USAGE = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + int(signal.SIGTERM)


class OneLineParser(argparse.ArgumentParser):
    """argparse with the one-line error every other failure has, instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message; see prog --help`` and exit with code 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see {self.prog} --help\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it stops the run exactly as Ctrl-C does."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread (elsewhere: unchanged,
    since only the main thread may set signal handlers); the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def report_unexpected(exc: BaseException, prog: str, stream: TextIO) -> int:
    """Write the one line for an exception that is not a FacepaintError; returns the exit code."""
    from facepaint.runtime.pipeline import failed_stage

    stage = failed_stage(exc)
    where = f" in the '{stage}' stage" if stage else ""
    text = " ".join(str(exc).split()) or "(no message)"
    if type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError):  # torch's, without importing it
        print(f"{prog}: error: out of memory{where} ({text[:200]}); close other programs, use a smaller portrait "
              "or --size, or run on the CPU", file=stream)
    else:
        print(f"{prog}: internal error{where}: {type(exc).__name__}: {text[:300]}; this is a bug, please report "
              "it with the command you ran (FACEPAINT_TRACEBACK=1 prints the traceback)", file=stream)
    if os.environ.get("FACEPAINT_TRACEBACK"):
        traceback.print_exception(exc, file=stream)
    return EXIT_INTERNAL

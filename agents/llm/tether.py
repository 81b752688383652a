"""A child process that dies with its parent: ``spawn`` starts ``python -m MODULE`` on a tether.

The parent keeps the write end of a pipe; the child gets the read end and, before it
imports ``MODULE``, starts a thread that blocks reading it. The parent never writes, so
the read returns only at end of file: when every copy of the write end is closed, which
the kernel does when the parent process exits, however it exits (``close``, SIGTERM,
SIGKILL, a crash). The thread then ends the child with ``os._exit``.

Chosen over ``prctl(PR_SET_PDEATHSIG)`` in a ``preexec_fn``: the death signal fires when
the *thread* that forked the child exits (the server is started from whichever thread
builds the policy), a ``preexec_fn`` is unsafe in a process with threads, the signal is
Linux-only and the parent may die before ``prctl`` runs. A pipe has none of these: a
parent that died before the child started is seen at once (the pipe is already at end
of file). The write end is non-inheritable and ``subprocess`` closes other descriptors,
so no other child holds it open (a ``fork`` without ``exec`` would).

``python -m agents.llm.tether FD MODULE [ARGS...]`` is the child side.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any

EXIT_CODE = 70  # the child's exit code when its parent went away


def spawn(module: str, args: Sequence[str], **popen: Any) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """Start ``python -m module *args`` tethered to this process, in a session of its own.

    Returns the process and the tether (the pipe's write end): closing the tether, or this
    process ending, ends the child. Its own session keeps a Ctrl-C at the terminal, meant for
    the run, from reaching the child (the run stops it when it closes). ``popen`` are further
    ``subprocess.Popen`` arguments (e.g. ``stdout``).
    """
    read, write = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(read), module, *args],
            pass_fds=(read,), start_new_session=True, **popen,
        )
    except BaseException:
        os.close(write)
        raise
    finally:
        os.close(read)
    return process, os.fdopen(write, "wb")


def _watch(fd: int) -> None:
    """Block until the pipe ``fd`` is at end of file (the parent is gone), then end this process."""
    while os.read(fd, 1):
        pass
    os._exit(EXIT_CODE)


def main(argv: Sequence[str]) -> None:
    """The child side: watch the tether ``argv[0]`` and run module ``argv[1]`` as ``__main__`` with the rest."""
    if len(argv) < 2 or not argv[0].isdigit():
        raise SystemExit("usage: python -m agents.llm.tether FD MODULE [ARGS...]")
    fd, module, *args = argv
    threading.Thread(target=_watch, args=(int(fd),), name="tether", daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])

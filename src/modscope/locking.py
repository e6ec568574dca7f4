"""One writer per store or run directory: a cross-platform file lock held for the whole run, naming its holder.

``DIR/.modscope.lock`` is locked with ``filelock`` (``flock`` on POSIX, ``LockFileEx`` on Windows), so the operating
system frees it when the holder dies, even by SIGKILL: a lock file left behind is never "stale" in a way that
blocks. ``DIR/.modscope.lock.json`` names the holder (pid, host, command, start time) so that a second process
can say who is using the directory. Once the lock is held, leftovers of a killed writer (``*.partial`` files of
Zarr, ``.*.tmp`` files of atomic writes) can be removed safely: nobody else is writing.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from modscope.errors import ModscopeError
from modscope.paths import write_json_atomic

LOCK_FILE = ".modscope.lock"
HOLDER_FILE = ".modscope.lock.json"


def has_content(directory: Path) -> bool:
    """Whether ``directory`` exists and holds anything besides the lock's own files."""
    return directory.is_dir() and any(p.name not in (LOCK_FILE, HOLDER_FILE) for p in directory.iterdir())


def _holder_line(directory: Path) -> str:
    try:
        info = json.loads((directory / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return f"{directory} is in use by another process"
    since = time.strftime("%H:%M", time.localtime(info.get("since", 0)))
    host = "" if info.get("host") == socket.gethostname() else f" on {info.get('host')}"
    return f"{directory} is in use by pid {info.get('pid')}{host} ({info.get('command', '?')}) since {since}"


@contextmanager
def directory_lock(directory: str | Path, command: str | None = None) -> Iterator[Path]:
    """Hold the lock of ``directory`` (created if missing) for the body of the ``with``.

    A second holder, in this or another process, gets a ModscopeError naming the first one. When the body
    fails and the directory was created here and holds nothing but the lock, it is removed again, so a refused
    run leaves nothing behind.

    Args:
        directory: the store or run directory. command: the holder's description (default: this command line).
    Yields:
        the directory, as a Path.
    """
    from filelock import FileLock, Timeout

    directory = Path(directory)
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ModscopeError(f"{directory} is a file, not a directory; choose another --out") from None
    lock = FileLock(str(directory / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ModscopeError(f"{_holder_line(directory)}; wait for it to finish (or stop it), "
                            "or use another --out directory") from None
    ok = False
    try:
        write_json_atomic(directory / HOLDER_FILE, {
            "pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
            "command": command or _command_line()})
        yield directory
        ok = True
    finally:
        (directory / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()
        if created and not ok and not has_content(directory):
            (directory / LOCK_FILE).unlink(missing_ok=True)
            with suppress(OSError):
                directory.rmdir()


def _command_line() -> str:
    args = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    line = " ".join(shlex.quote(a) for a in args)
    return line if len(line) <= 80 else line[:77] + "..."


def remove_orphans(directory: str | Path) -> int:
    """Delete what a killed writer left behind under ``directory``; call only while holding its lock.

    Removes Zarr's ``*.partial`` chunk files and the ``.*.tmp`` files of atomic writes (neither is ever read);
    returns how many files were removed.
    """
    removed = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if name.endswith(".partial") or (name.startswith(".") and name.endswith(".tmp")):
                Path(root, name).unlink(missing_ok=True)
                removed += 1
    return removed

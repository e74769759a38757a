"""Folder runs: which files of an inbox are ready, and moving a finished file to the archive.

A nightly job points ``import`` at a folder (``import 'inbox/*.csv' --archive-dir done/``). Files
are taken in name order. A file still being written is left for the next run: one whose name says
so (``report.csv.part``, Excel's lock file ``~$report.xlsx``), or whose size or modification time
changes between two looks ``settle_seconds`` apart (:func:`select_ready`). A file whose rows are
all recorded in the ledger is moved to ``<archive>/<YYYY-MM-DD>/`` (:func:`archive_file`):
atomically with :func:`os.replace` on one file system; across two (``EXDEV``) it is copied under a
temporary name, flushed to disk (``fsync``), renamed into place, and only then removed from the
inbox, so a crash at any point leaves at least one whole copy. A name already taken in the
archive gets a counter: ``leads.csv``, ``leads-1.csv``, ``leads-2.csv``...
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from etl.errors import OutputError

__all__ = ["archive_file", "fingerprint", "is_partial_name", "select_ready"]

log = logging.getLogger(__name__)

#: Name endings of files a program is still writing (browsers, rsync, scp and the like).
PARTIAL_SUFFIXES = (".part", ".partial", ".crdownload", ".tmp", ".download")
#: Name beginnings of lock files office programs keep beside an open document.
PARTIAL_PREFIXES = ("~$", ".~lock.")


def is_partial_name(path: Path) -> bool:
    """True for a name that says the file is still being written or is an office lock file
    (``x.csv.part``, ``~$x.xlsx``, ``.~lock.x.csv#``)."""
    name = path.name.lower()
    return name.endswith(PARTIAL_SUFFIXES) or name.startswith(PARTIAL_PREFIXES)


def select_ready(
    paths: Sequence[Path],
    settle_seconds: float,
    pause: Callable[[float], None] = time.sleep,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split files into those ready to import and those still being written.

    Every file is looked at (size, modification time in ns), ``pause(settle_seconds)`` is called
    once, and every file is looked at again; one that changed is left. A file that does not exist
    counts as ready (the run reports it missing, exit 66).

    Args:
        paths: the files, in the order they will run.
        settle_seconds: seconds between the two looks.
        pause: waits between the looks (tests pass a function that writes to a file instead of
            sleeping, so the outcome does not depend on timing).

    Returns:
        ``(ready, left)``: ``left`` pairs each file left alone with the reason.
    """
    left: list[tuple[Path, str]] = []
    candidates: list[Path] = []
    for path in paths:
        if is_partial_name(path):
            left.append((path, "still being written (its name says so); left for the next run"))
        else:
            candidates.append(path)
    first = {p: _look(p) for p in candidates}
    if candidates:
        pause(settle_seconds)
    ready: list[Path] = []
    for path in candidates:
        if _look(path) != first[path]:
            left.append(
                (
                    path,
                    f"still being written (its size or time changed within {settle_seconds:g} s); "
                    "left for the next run",
                )
            )
        else:
            ready.append(path)
    return ready, left


def _look(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes (hex): the ledger's name for a file whatever it is called.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_file(
    path: Path,
    folder: Path,
    replace: Callable[[Path, Path], None] = os.replace,
) -> Path:
    """Move ``path`` into ``folder`` (created if needed) under a free name; returns where it went.

    Args:
        path: the file to move.
        folder: the archive folder of the day, e.g. ``done/2026-12-01``.
        replace: the atomic rename (tests pass one that fails with ``EXDEV`` to take the
            two-file-system path).

    Raises:
        OutputError: the folder cannot be written or the file cannot be moved (exit 74); the
            file stays where it was.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder, path.name)
        try:
            replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _copy_then_remove(path, target)
        else:
            _fsync_dir(folder)
            _fsync_dir(path.parent)
    except OSError as exc:
        raise OutputError(
            str(path), f"cannot be moved to the archive {folder}: {exc.strerror or exc}"
        ) from None
    log.info("%s: archived as %s", path, target)
    return target


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{stem}-{n}{suffix}"
    return target


def _copy_then_remove(path: Path, target: Path) -> None:
    """Across file systems: copy to a hidden temporary name, fsync, rename into place (on the
    target's file system, so atomic), fsync the folder, then remove the original."""
    temp = target.with_name(f".{target.name}.copying")
    try:
        with open(path, "rb") as src, open(temp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copystat(path, temp)
        os.replace(temp, target)  # both names on the target's file system
    except OSError:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    os.unlink(path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename or removal in ``folder`` durable (POSIX: fsync the directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

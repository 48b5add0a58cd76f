""".condarc on disk: bytes <-> text, the backup of the user's original, the lock, atomic writes.

The promise kept here: the user's file is never lost. The backup of the original and the order
of every write live in journal.py (its docstring draws the states); this module reads the file
(regular files only, at most MAX_CONDARC_BYTES), decodes it, and holds the lock that keeps two
cnnsetup runs from interleaving.
"""

from __future__ import annotations

import contextlib
import hashlib
import locale
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional

from cnnsetup.errors import ConfigError, FileSafetyError
from cnnsetup.i18n import _
from cnnsetup.mirror import journal

BACKUP_SUFFIX = journal.BACKUP_SUFFIX
META_SUFFIX = journal.RECORD_SUFFIX
LOCK_SUFFIX = ".cnnsetup-lock"
# Real .condarc files are a few kB (the largest of the ~150 collected: 22 kB); past three times
# that, parsing and writing back would take seconds, so such a file is refused before it is read.
MAX_CONDARC_BYTES = 64 * 1024
BOM = b"\xef\xbb\xbf"


def default_condarc(env: Optional[Mapping[str, str]] = None, platform: Optional[str] = None) -> Path:
    """The file `conda config` itself writes: ~/.condarc (%USERPROFILE%\\.condarc on Windows)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    home = env.get("USERPROFILE") if platform == "win32" else env.get("HOME")
    return Path(home) / ".condarc" if home else Path.home() / ".condarc"


def system_encoding() -> str:
    """The encoding conda opens its files with: the system's default (cp936 on Chinese Windows)."""
    return locale.getpreferredencoding(False) or "utf-8"


@dataclass
class CondarcText:
    """A .condarc as read: its text (LF line endings, no BOM) and how to write it back."""

    path: Path
    exists: bool
    raw: bytes
    text: str
    encoding: str  # "utf-8", or the system encoding the file was written in (e.g. "gbk")
    crlf: bool
    had_bom: bool

    def encode(self, text: str) -> bytes:
        """`text` in this file's encoding and line endings (never with a BOM)."""
        if self.crlf:
            text = text.replace("\n", "\r\n")
        return text.encode(self.encoding)


def read(path: Path, *, fallback_encoding: Optional[str] = None) -> CondarcText:
    """Read `path`, or describe an absent file; refuse what cannot be decoded or opened, what is
    not a regular file (a FIFO, a device: never blocks) and files over MAX_CONDARC_BYTES."""
    raw = journal.read_regular(path, limit=MAX_CONDARC_BYTES, too_large=_too_large_message())
    if raw is None:
        return CondarcText(path, False, b"", "", "utf-8", False, False)
    had_bom = raw.startswith(BOM)
    body = raw[len(BOM):] if had_bom else raw
    encoding = "utf-8"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as utf8_error:
        encoding = fallback_encoding or system_encoding()
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            from cnnsetup.mirror.yaml_io import position_of_byte

            line, column = position_of_byte(body, utf8_error.start)
            raise ConfigError(
                _(
                    "{path}, line {line}, column {column}: this byte is neither UTF-8 nor in "
                    "this system's encoding ({encoding}); cnnsetup will not guess. Save the file "
                    "as UTF-8 and try again."
                ).format(path=path, line=line, column=column, encoding=encoding)
            ) from None
    crlf = "\r\n" in text
    return CondarcText(path, True, raw, text.replace("\r\n", "\n"), encoding, crlf, had_bom)


def _too_large_message() -> str:
    return _("{path} is {size} bytes; cnnsetup edits .condarc files of at most {limit} bytes "
             "(real ones are a few kB). Nothing was changed.")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the lock ---------------------------------------------------------------------------------

LOCK_TIMEOUT_S = 60.0


@contextlib.contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock for `path` so two cnnsetup runs cannot interleave their edits.

    The lock file lives in the user's own cache folder (not the shared temporary folder, where
    another user could hold it), named after the file's real path, so the folder of the
    .condarc holds nothing of cnnsetup's once a backup is restored. Waits at most `timeout`."""
    from cnnsetup.paths import cache_dir, ensure_dir

    key = hashlib.sha256(os.path.realpath(path).encode("utf-8", "surrogateescape")).hexdigest()
    lock_path = cache_dir() / "locks" / f"{key[:24]}{LOCK_SUFFIX}"
    try:
        ensure_dir(lock_path.parent)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0), 0o600)
        owner = journal.owner_for(lock_path.parent)
        if owner is not None:
            os.fchown(fd, *owner)
        handle = os.fdopen(fd, "a+b")
    except OSError as error:
        raise FileSafetyError(
            _("Cannot create the lock file {path}: {reason}").format(
                path=lock_path, reason=error.strerror or error
            )
        ) from None
    with handle:
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            import msvcrt

            handle.seek(0)
            _acquire(lambda: msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1), path, timeout)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            _acquire(lambda: fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB), path,
                     timeout)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _acquire(try_lock, path: Path, timeout: float) -> None:
    """Call `try_lock` (which raises OSError while someone else holds the lock) until it
    succeeds, or give up after `timeout` seconds with a message."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            try_lock()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise FileSafetyError(
                    _("Another cnnsetup is still changing {path}; nothing was changed. Try again "
                      "in a moment.").format(path=path)
                ) from None
            time.sleep(0.05)


# --- atomic writes ----------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes, *, new_mode: Optional[int] = None) -> None:
    """Replace the regular file at `path` with `data` in one step, through a symlink to its
    target, keeping its permission bits (a new file gets `new_mode`, default the umask's) and,
    run as root, its owner; on failure the old file is untouched and no temp file stays."""
    journal.write_atomic(path, data, mode=new_mode, owner=journal.owner_for(path))


def check_writable(path: Path) -> None:
    """Refuse early (before any change) when the file or its folder cannot be written."""
    target = Path(os.path.realpath(path))
    if target.exists() and not os.access(target, os.W_OK):
        raise FileSafetyError(_("{path} is not writable.").format(path=target))
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise FileSafetyError(_("The folder {path} is not writable.").format(path=target.parent))


# --- the backup: see journal.py for its states ---------------------------------------------

def backup_bytes_path(condarc: Path) -> Path:
    return journal.backup_path(condarc)


def backup_meta_path(condarc: Path) -> Path:
    return journal.record_path(condarc)


def journal_for(condarc: Path) -> journal.Journal:
    """The backup journal of `condarc`, refusing files over MAX_CONDARC_BYTES."""
    return journal.Journal(condarc, limit=MAX_CONDARC_BYTES, too_large=_too_large_message())


def load_backup(condarc: Path) -> Optional[journal.Record]:
    """The record kept for `condarc` as it is on disk (no recovery, no lock), or None."""
    return journal.Journal(condarc).load()


def mode_of(path: Path) -> int:
    """The permission bits of `path` (through a symlink), or private when it cannot be read."""
    return journal.mode_of(path)

""".condarc on disk: bytes <-> text, the backup of the user's original, the lock, atomic writes.

The promise kept here: the user's file is never lost. Before cnnsetup first changes a file it
keeps the exact original bytes (or the fact that there was no file); every write goes to a
temporary file in the same folder and replaces the target in one step; what was written is read
back and checked; a failure at any point leaves the original as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import locale
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Mapping, Optional

from cnnsetup.errors import ConfigError, FileSafetyError
from cnnsetup.i18n import _

BACKUP_SUFFIX = ".cnnsetup-backup"
META_SUFFIX = ".cnnsetup-backup.json"
PIP_SUFFIX = ".cnnsetup-pip.json"
LOCK_SUFFIX = ".cnnsetup-lock"
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
    """Read `path`, or describe an absent file; refuse what cannot be decoded or opened."""
    if path.is_dir():
        raise ConfigError(_("{path} is a folder, not a file.").format(path=path))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return CondarcText(path, False, b"", "", "utf-8", False, False)
    except OSError as error:
        raise ConfigError(
            _("Cannot read {path}: {reason}").format(path=path, reason=error.strerror or error)
        ) from None
    had_bom = raw.startswith(BOM)
    body = raw[len(BOM):] if had_bom else raw
    encoding = "utf-8"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        encoding = fallback_encoding or system_encoding()
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ConfigError(
                _(
                    "{path} is neither UTF-8 nor in this system's encoding ({encoding}); "
                    "cnnsetup will not guess. Save it as UTF-8 and try again."
                ).format(path=path, encoding=encoding)
            ) from None
    crlf = "\r\n" in text
    return CondarcText(path, True, raw, text.replace("\r\n", "\n"), encoding, crlf, had_bom)


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
    from cnnsetup.paths import cache_dir

    key = hashlib.sha256(os.path.realpath(path).encode("utf-8", "surrogateescape")).hexdigest()
    lock_path = cache_dir() / "locks" / f"{key[:24]}{LOCK_SUFFIX}"
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+b")
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
    """Replace the file at `path` with `data` in one step, through a symlink to its target,
    keeping its permission bits (a new file gets `new_mode`, default the umask's); on failure
    the old file is untouched and no temp file stays."""
    target = Path(os.path.realpath(path))
    folder = target.parent
    if not folder.is_dir():
        raise FileSafetyError(_("The folder {path} does not exist.").format(path=folder))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = new_mode if new_mode is not None else 0o666 & ~_umask()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=folder)
    except OSError as error:
        raise FileSafetyError(
            _("Cannot write in {path}: {reason}").format(path=folder, reason=error.strerror or error)
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError):
            raise FileSafetyError(
                _("Could not write {path}: {reason}. The file was not changed.").format(
                    path=target, reason=error.strerror or error
                )
            ) from None
        raise


def check_writable(path: Path) -> None:
    """Refuse early (before any change) when the file or its folder cannot be written."""
    target = Path(os.path.realpath(path))
    if target.exists() and not os.access(target, os.W_OK):
        raise FileSafetyError(_("{path} is not writable.").format(path=target))
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise FileSafetyError(_("The folder {path} is not writable.").format(path=target.parent))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- the backup -------------------------------------------------------------------------------

@dataclass
class Backup:
    """What cnnsetup kept before it first changed the file, and what it last wrote."""

    condarc: Path
    existed: bool
    original_sha256: Optional[str]
    last_written_sha256: Optional[str]
    created: str

    @property
    def path(self) -> Path:
        """The file to point the user at: the original's bytes, or the record when there was none."""
        return self.bytes_path if self.existed else self.meta_path

    @property
    def bytes_path(self) -> Path:
        return backup_bytes_path(self.condarc)

    @property
    def meta_path(self) -> Path:
        return backup_meta_path(self.condarc)

    def original_bytes(self) -> Optional[bytes]:
        """The exact original bytes, or None when there was no file; checked against its hash."""
        if not self.existed:
            return None
        try:
            data = self.bytes_path.read_bytes()
        except OSError as error:
            raise FileSafetyError(
                _("The backup {path} cannot be read ({reason}); your original is not there any "
                  "more, so nothing was changed.").format(path=self.bytes_path,
                                                         reason=error.strerror or error)
            ) from None
        if sha256(data) != self.original_sha256:
            raise FileSafetyError(
                _("The backup {path} does not match what cnnsetup saved; it was changed.").format(
                    path=self.bytes_path
                )
            )
        return data


def backup_bytes_path(condarc: Path) -> Path:
    return condarc.with_name(condarc.name + BACKUP_SUFFIX)


def backup_meta_path(condarc: Path) -> Path:
    return condarc.with_name(condarc.name + META_SUFFIX)


def load_backup(condarc: Path) -> Optional[Backup]:
    """The backup kept for `condarc`, or None when there is none."""
    data = _read_record(backup_meta_path(condarc))
    if data is None:
        if backup_bytes_path(condarc).exists():
            # The bytes without their record: never overwrite them with a newer "original".
            raise FileSafetyError(
                _("{path} exists but its record {record} is missing, so cnnsetup cannot tell "
                  "whether it is your original. Move it somewhere safe, then try again.").format(
                    path=backup_bytes_path(condarc), record=backup_meta_path(condarc)))
        return None
    return Backup(
        condarc=condarc,
        existed=bool(data.get("existed")),
        original_sha256=data.get("original_sha256"),
        last_written_sha256=data.get("last_written_sha256"),
        created=str(data.get("created", "")),
    )


def save_backup(backup: Backup, original: Optional[bytes] = None) -> None:
    """Write the backup record (and, the first time, the original bytes) atomically."""
    if original is not None:
        # The copy gets the original's permissions: a private .condarc (a proxy password)
        # must not become readable by others through its backup.
        write_atomic(backup.bytes_path, original, new_mode=mode_of(backup.condarc))
    _write_record(backup.meta_path, {
        "format": 1,
        "condarc": str(backup.condarc),
        "existed": backup.existed,
        "original_sha256": backup.original_sha256,
        "last_written_sha256": backup.last_written_sha256,
        "created": backup.created,
    })


def new_backup(current: CondarcText) -> Backup:
    """A backup record for the file as it is now, before cnnsetup's first change."""
    return Backup(
        condarc=current.path,
        existed=current.exists,
        original_sha256=sha256(current.raw) if current.exists else None,
        last_written_sha256=None,
        created=datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
    )


def drop_backup(backup: Backup) -> None:
    """Remove the backup files once the original is back in place."""
    for path in (backup.bytes_path, backup.meta_path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --- pip's previous index, kept beside the .condarc backup ------------------------------------

def pip_record_path(condarc: Path) -> Path:
    return condarc.with_name(condarc.name + PIP_SUFFIX)


def load_pip_record(condarc: Path) -> Optional[dict]:
    """{"previous": the index-url pip had before cnnsetup (or None)}, or None when not kept."""
    return _read_record(pip_record_path(condarc))


def save_pip_record(condarc: Path, previous: Optional[str]) -> None:
    """Keep pip's index-url from before cnnsetup's first change; later changes keep the first."""
    if load_pip_record(condarc) is not None:
        return
    _write_record(pip_record_path(condarc), {
        "format": 1, "previous": previous,
        "created": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")})


def drop_pip_record(condarc: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        pip_record_path(condarc).unlink()


def _read_record(path: Path) -> Optional[dict]:
    """One of cnnsetup's JSON records, or None when it does not exist; unreadable is an error."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise FileSafetyError(
            _("The backup record {path} cannot be read: {reason}").format(path=path, reason=error)
        ) from None
    if not isinstance(record, dict):
        raise FileSafetyError(
            _("The backup record {path} cannot be read: {reason}").format(
                path=path, reason=_("it is not a cnnsetup record")))
    return record


def _write_record(path: Path, record: dict) -> None:
    write_atomic(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"), new_mode=0o600)


def mode_of(path: Path) -> int:
    """The permission bits of `path` (through a symlink), or private when it cannot be read."""
    try:
        return stat.S_IMODE(Path(os.path.realpath(path)).stat().st_mode)
    except OSError:
        return 0o600

"""The backup of a user's file as a small journal: every crash point is recoverable.

For a file X that cnnsetup changes (~/.condarc, a pip.conf), two files live beside it:

    B = X.cnnsetup-backup        the exact original bytes (only when X existed)
    R = X.cnnsetup-backup.json   the record: did X exist, the original's SHA-256, the SHA-256 of
                                 the last two files cnnsetup wrote, whether hand edits were carried
                                 into a write, and `pending`: the step in progress.

States, and the order of writes between them (each arrow is one atomic step: a temp file in the
same folder, fsync, rename; or one unlink):

      CLEAN (no R, no B; X is the user's)
        | 1. write B = X's bytes                      crash here: B without R, B == X
        v
      B, no R                                           -> next run removes B (X is the original)
        | 2. write R {pending: write sha(new)}        crash here: R pending, X == original
        v
      R pending write                                    -> next run: X == new ? complete : roll back
        | 3. replace X with the new bytes
        | 4. write R {written += sha(new), pending: none}
        v
      SWITCHED (R, B; X == one of R.written, or edited by hand)
        | later switches: 2 -> 3 -> 4 again (B is never rewritten)
        |
        | restore: 5. write R {pending: restore}      crash: X == original ? complete : roll back
        |          6. replace X with B's bytes (or remove X when it did not exist)
        |          7. remove R                        crash: B without R, B == X -> remove B
        |          8. remove B
        v
      CLEAN

So at every instant the original bytes are on disk in a place this module can name: X itself
(CLEAN, before step 3, after step 6), or B (which is written before R claims it and removed only
after R is gone). `recover()` runs first in every command that touches X (switch, restore,
status) under the lock, completes or rolls back an interrupted step, and returns what it did in
words. A record whose bytes are missing or changed is never trusted: if X still holds the
original, B is written again; otherwise cnnsetup refuses with the exact command that starts
afresh. Bytes without a record that differ from X are renamed aside (never deleted) and named.

Signals: steps 1-4 and 5-8 run with SIGINT and SIGTERM deferred; a signal that arrives meanwhile
is acted on after the step, with a message that says which state the files are in (`Interrupted`).

Only regular files are read or written: X may be a symlink to a regular file (it is written
through to its target, as conda does); a device, FIFO, socket or folder is refused, and every open
uses O_NONBLOCK so a FIFO cannot block. B, R and the temp files are opened without following
links (O_NOFOLLOW, O_EXCL; on Windows an lstat check first), so a planted link is refused.
Run as root on another user's home (`sudo -E`), every file written keeps, or gets, the owner and
group of X (or of X's folder when X is new); X's permission bits are kept.

API (the caller holds `locked(X)`):
    j = Journal(X); messages = j.recover()
    j.record                      the Record, or None when nothing is kept
    j.write(new_bytes)            steps 1-4 (1 only when nothing is kept yet)
    j.restore(force=False)        steps 5-8 -> RestoreOutcome (raises EditedError when X holds
                                  edits cnnsetup did not write, unless force: they are kept aside)
    read_regular(path, limit)     the bytes of a regular file, or None when absent
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import stat
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

from cnnsetup.errors import CnnsetupError, ConfigError, FileSafetyError
from cnnsetup.i18n import _

BACKUP_SUFFIX = ".cnnsetup-backup"
RECORD_SUFFIX = ".cnnsetup-backup.json"
RECORD_FORMAT = 2
MAX_RECORD_BYTES = 64 * 1024

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class Interrupted(CnnsetupError):
    """Ctrl-C or SIGTERM arrived during a journal step; the step was finished first."""

    exit_code = 130


class EditedError(FileSafetyError):
    """X holds content cnnsetup did not write; restoring would throw it away."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now_stamp() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


# --- regular files only ----------------------------------------------------------------------

def kind_of(mode: int) -> str:
    """Plain words for a file type that is not a regular file."""
    if stat.S_ISDIR(mode):
        return _("a folder")
    if stat.S_ISFIFO(mode):
        return _("a FIFO (named pipe)")
    if stat.S_ISSOCK(mode):
        return _("a socket")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return _("a device")
    if stat.S_ISLNK(mode):
        return _("a symbolic link")
    return _("not a regular file")


def _not_regular(path: Path, mode: int) -> ConfigError:
    if stat.S_ISDIR(mode):
        return ConfigError(_("{path} is a folder, not a file.").format(path=path))
    return ConfigError(
        _("{path} is {kind}, not a regular file; cnnsetup reads and writes only regular files and "
          "left it alone.").format(path=path, kind=kind_of(mode)))


def read_regular(path: Path, *, limit: Optional[int] = None, follow: bool = True,
                 too_large: Optional[str] = None) -> Optional[bytes]:
    """The bytes of the regular file at `path` (through a symlink when `follow`), or None when
    there is no file. Raises ConfigError for a folder, device, FIFO or socket (opened with
    O_NONBLOCK, so a FIFO cannot block), for a link when not `follow`, and for a file over
    `limit` bytes (message `too_large`, with {path}, {size} and {limit})."""
    flags = os.O_RDONLY | _NONBLOCK | _BINARY | (0 if follow else _NOFOLLOW)
    if not follow and os.name == "nt" and os.path.islink(path):  # pragma: no cover
        raise _planted(path)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as error:
        if not follow and os.path.islink(path):
            raise _planted(path) from None
        if os.path.isdir(path):
            raise ConfigError(_("{path} is a folder, not a file.").format(path=path)) from None
        raise ConfigError(
            _("Cannot read {path}: {reason}").format(path=path, reason=error.strerror or error)
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode)
        if limit is not None and info.st_size > limit:
            raise ConfigError((too_large or _("{path} is {size} bytes; cnnsetup reads at most "
                                              "{limit} bytes.")).format(
                path=path, size=info.st_size, limit=limit))
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise ConfigError(
            _("Cannot read {path}: {reason}").format(path=path, reason=error.strerror or error)
        ) from None
    finally:
        os.close(fd)


def _planted(path: Path) -> FileSafetyError:
    return FileSafetyError(
        _("{path} is a link or not a regular file; cnnsetup never made it so, and does not follow "
          "it. Look at it, remove it, then try again.").format(path=path))


def check_target(path: Path) -> Path:
    """The real file a write to `path` lands on (through symlinks), refused unless it is a
    regular file or absent, in an existing folder."""
    target = Path(os.path.realpath(path))
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise _not_regular(path if target == path else target, info.st_mode)
    if not target.parent.is_dir():
        raise FileSafetyError(_("The folder {path} does not exist.").format(path=target.parent))
    return target


# --- owners ------------------------------------------------------------------------------------

def owner_for(path: Path) -> Optional[tuple[int, int]]:
    """(uid, gid) that files cnnsetup writes for `path` must have: `path`'s own (through a
    link), else its folder's. None when not running as root (files are ours anyway)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    for candidate in (path, Path(os.path.realpath(path)).parent):
        try:
            info = os.stat(candidate)
        except OSError:
            continue
        return info.st_uid, info.st_gid
    return None


def _chown_fd(fd: int, owner: Optional[tuple[int, int]]) -> None:
    if owner is not None and hasattr(os, "fchown"):
        info = os.fstat(fd)
        if (info.st_uid, info.st_gid) != owner:
            os.fchown(fd, *owner)


# --- atomic writes -----------------------------------------------------------------------------

def temp_pattern(name: str) -> re.Pattern:
    """The names `write_atomic` gives its temp files for a file called `name`."""
    return re.compile(re.escape(name) + r"\.[A-Za-z0-9_]{8}\.tmp\Z")


def write_atomic(path: Path, data: bytes, *, follow: bool = True, mode: Optional[int] = None,
                 owner: Optional[tuple[int, int]] = None) -> Path:
    """Replace the regular file at `path` (through symlinks when `follow`) with `data` in one
    step: a temp file opened with O_EXCL|O_NOFOLLOW in the same folder, fsync, rename. The
    permission bits are the old file's (a new file: `mode`, default by the umask); `owner`
    (uid, gid) is applied when given. On failure the old file is untouched and the temp file is
    gone. Returns the path written (the link's target when following)."""
    if follow:
        target = check_target(path)
    else:
        target = path
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise _planted(path)
        if not target.parent.is_dir():
            raise FileSafetyError(_("The folder {path} does not exist.").format(path=target.parent))
    try:
        keep_mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        keep_mode = mode if mode is not None else 0o666 & ~_umask()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp",
                                        dir=target.parent)
    except OSError as error:
        raise FileSafetyError(_("Cannot write in {path}: {reason}").format(
            path=target.parent, reason=error.strerror or error)) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            _chown_fd(out.fileno(), owner)
            os.chmod(out.fileno(), keep_mode) if os.name != "nt" else None
            os.fsync(out.fileno())
        if os.name == "nt":  # pragma: no cover
            os.chmod(tmp, keep_mode)
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError):
            raise FileSafetyError(
                _("Could not write {path}: {reason}. The file was not changed.").format(
                    path=target, reason=error.strerror or error)
            ) from None
        raise
    return target


def _fsync_folder(folder: Path) -> None:
    if os.name == "nt":  # pragma: no cover
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    _fsync_folder(path.parent)


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove temp files an earlier killed run left for `path` (and its backup and record).
    Call only with the lock held: no live cnnsetup is writing them then."""
    removed = []
    targets = {Path(os.path.realpath(path)), backup_path(path), record_path(path)}
    for target in targets:
        pattern = temp_pattern(target.name)
        try:
            names = os.listdir(target.parent)
        except OSError:
            continue
        for name in names:
            if pattern.match(name):
                candidate = target.parent / name
                with contextlib.suppress(OSError):
                    if stat.S_ISREG(os.lstat(candidate).st_mode):
                        candidate.unlink()
                        removed.append(candidate)
    return removed


# --- deferred signals --------------------------------------------------------------------------

_deferring: Optional[list[int]] = None  # the signals held by the running deferred_signals()


@contextlib.contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM until the block ends; yields the list of signals that arrived.
    Outside the main thread (where handlers cannot be set) it defers nothing."""
    global _deferring
    if _deferring is not None:  # nested: the outer block acts on what arrives
        yield _deferring
        return
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    _deferring = received
    wanted = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous = {}
    for number in wanted:
        previous[number] = signal.signal(number, lambda n, _frame: received.append(n))
    try:
        yield received
    finally:
        _deferring = None
        for number, handler in previous.items():
            signal.signal(number, handler)


def _raise_if_interrupted(received: list[int], state: str) -> None:
    if received:
        raise Interrupted(_("Interrupted. The step in progress was finished first: {state}")
                          .format(state=state))


# --- the record --------------------------------------------------------------------------------

def backup_path(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def record_path(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


@dataclass
class Record:
    """R's content. `pending` is None, {"action": "write", "sha256": ...} or {"action": "restore"}."""

    existed: bool
    original_sha256: Optional[str]
    written: list[str] = field(default_factory=list)  # the last two writes, newest last
    edited: bool = False  # hand edits were carried into a later cnnsetup write
    pending: Optional[dict] = None
    created: str = ""

    def to_json(self, path: Path) -> bytes:
        return (json.dumps({
            "format": RECORD_FORMAT, "file": str(path), "existed": self.existed,
            "original_sha256": self.original_sha256, "written": self.written[-2:],
            "edited": self.edited, "pending": self.pending, "created": self.created,
        }, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: dict) -> "Record":
        written = data.get("written")
        if written is None:  # format 1
            last = data.get("last_written_sha256")
            written = [last] if last else []
        return cls(existed=bool(data.get("existed")),
                   original_sha256=data.get("original_sha256"),
                   written=[str(w) for w in written if w][-2:],
                   edited=bool(data.get("edited", False)),
                   pending=data.get("pending") if isinstance(data.get("pending"), dict) else None,
                   created=str(data.get("created", "")))

    def is_original(self, current: Optional[bytes]) -> bool:
        if current is None:
            return not self.existed
        return self.existed and sha256(current) == self.original_sha256


@dataclass
class RestoreOutcome:
    removed: bool  # X did not exist before cnnsetup, so it was removed
    kept_aside: Optional[Path]


class Journal:
    """The backup journal of one file `path` (see the module docstring for its states)."""

    def __init__(self, path: Path, *, limit: Optional[int] = None,
                 too_large: Optional[str] = None) -> None:
        self.path = path
        self.backup = backup_path(path)
        self.record_file = record_path(path)
        self.limit = limit
        self.too_large = too_large
        self.record: Optional[Record] = None

    # -- reading

    def current(self) -> Optional[bytes]:
        """X's bytes now, or None when there is no file."""
        return read_regular(self.path, limit=self.limit, too_large=self.too_large)

    def load(self) -> Optional[Record]:
        """Read R (never following a link); None when absent."""
        try:
            raw = read_regular(self.record_file, limit=MAX_RECORD_BYTES, follow=False)
        except ConfigError as error:
            raise FileSafetyError(_("The backup record {path} cannot be read: {reason}").format(
                path=self.record_file, reason=error.message)) from None
        if raw is None:
            self.record = None
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as error:
            raise FileSafetyError(_("The backup record {path} cannot be read: {reason}").format(
                path=self.record_file, reason=error)) from None
        if not isinstance(data, dict):
            raise FileSafetyError(_("The backup record {path} cannot be read: {reason}").format(
                path=self.record_file, reason=_("it is not a cnnsetup record")))
        self.record = Record.from_json(data)
        return self.record

    def original(self) -> Optional[bytes]:
        """B's bytes checked against R, or None when X did not exist (call after recover)."""
        assert self.record is not None
        if not self.record.existed:
            return None
        data = read_regular(self.backup, follow=False)
        assert data is not None and sha256(data) == self.record.original_sha256
        return data

    def _backup_problem(self) -> Optional[str]:
        """Why B cannot be trusted as R's original, or None when it can."""
        try:
            data = read_regular(self.backup, follow=False)
        except CnnsetupError:
            return _("it is a link or not a regular file")
        if data is None:
            return _("it does not exist")
        if sha256(data) != self.record.original_sha256:  # type: ignore[union-attr]
            return _("its bytes are not the ones cnnsetup kept")
        return None

    # -- writing the journal's own files

    def _owner(self) -> Optional[tuple[int, int]]:
        return owner_for(self.path)

    def _save(self, record: Record) -> None:
        write_atomic(self.record_file, record.to_json(self.path), follow=False, mode=0o600,
                     owner=self._owner())
        self.record = record

    def _drop(self) -> None:
        """R first, then B (a crash between leaves B == X, which recover removes)."""
        _unlink(self.record_file)
        _unlink(self.backup)
        self.record = None

    def _aside(self, source: Path, label: str) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for n in range(100):
            aside = source.with_name(f"{source.name}.{label}-{stamp}" + (f"-{n}" if n else ""))
            if not os.path.lexists(aside):
                os.rename(source, aside)
                return aside
        raise FileSafetyError(_("Cannot find a free name beside {path}.").format(path=source))

    # -- recovery

    def recover(self, *, move_unrecorded: bool = True) -> list[str]:
        """Complete or roll back whatever an earlier, interrupted run left; say what was done.
        Raises FileSafetyError (with a working fix) when the original cannot be named. With
        `move_unrecorded` False (a read-only command), bytes without a record that differ from
        the file are only reported, not renamed aside."""
        self.move_unrecorded = move_unrecorded
        notes: list[str] = []
        removed = remove_stale_temps(self.path)
        if removed:
            notes.append(_("Removed {count} temporary file(s) an interrupted run left: {paths}")
                         .format(count=len(removed), paths=", ".join(str(p) for p in removed)))
        with deferred_signals() as received:
            notes += self._recover_record()
        _raise_if_interrupted(received, _("the interrupted earlier run was cleaned up."))
        return notes

    def _recover_record(self) -> list[str]:
        record = self.load()
        if record is None and not os.path.lexists(self.backup):
            return []  # CLEAN: nothing to read
        current = self.current()
        if record is None:
            data = read_regular(self.backup, follow=False)  # a planted link is refused here
            if data == current:
                _unlink(self.backup)
                return [_("An interrupted run left a copy of {path} in {backup} with no record; "
                          "it was the same as {path} and was removed.").format(
                              path=self.path, backup=self.backup)]
            if not getattr(self, "move_unrecorded", True):
                return [_("{backup} has no record and differs from {path}; the next switch or "
                          "restore keeps it aside under a new name and tells you which.").format(
                              backup=self.backup, path=self.path)]
            aside = self._aside(self.backup, "unrecorded")
            return [_("{backup} had no record and differs from {path}; it is kept as {aside}. "
                      "If it is your original, copy it back over {path} yourself.").format(
                          backup=self.backup, path=self.path, aside=aside)]
        notes: list[str] = []
        if record.existed:
            problem = self._backup_problem()
            if problem is not None:
                if record.is_original(current):
                    if os.path.lexists(self.backup) and problem != _("it does not exist"):
                        self._aside(self.backup, "unrecorded")
                    write_atomic(self.backup, current, follow=False,  # type: ignore[arg-type]
                                 mode=mode_of(self.path), owner=self._owner())
                    notes.append(_("The backup {backup} was missing or damaged; {path} still "
                                   "holds your original, so it was kept again.").format(
                                       backup=self.backup, path=self.path))
                else:
                    remove = _remove_command([self.record_file])
                    raise FileSafetyError(
                        _("The record {record} says your original {path} (from {created}) is kept "
                          "in {backup}, but {problem}. cnnsetup cannot bring that original back "
                          "and changed nothing.").format(
                              record=self.record_file, path=self.path, created=record.created,
                              backup=self.backup, problem=problem),
                        hint=_("If you have the original elsewhere, put it back as {backup}. To "
                               "keep {path} as it is now and start afresh: {command}").format(
                                   backup=self.backup, path=self.path, command=remove))
        pending = record.pending
        if pending is None:
            return notes
        if pending.get("action") == "write":
            new = pending.get("sha256")
            record.pending = None
            if current is not None and sha256(current) == new:
                record.written = (record.written + [new])[-2:]
                self._save(record)
                notes.append(_("An interrupted switch of {path} had written the new file; its "
                               "record was completed.").format(path=self.path))
            elif not record.written and not record.edited and record.is_original(current):
                self._drop()
                notes.append(_("An interrupted switch had not changed {path}; its backup was "
                               "removed.").format(path=self.path))
            else:
                self._save(record)
                notes.append(_("An interrupted switch had not changed {path}; it was rolled "
                               "back.").format(path=self.path))
        else:  # restore
            if record.is_original(current):
                self._drop()
                notes.append(_("An interrupted restore of {path} had put the original back; the "
                               "backup was removed to finish it.").format(path=self.path))
            else:
                record.pending = None
                self._save(record)
                notes.append(_("An interrupted restore had not changed {path}; your original is "
                               "still kept in {backup}.").format(
                                   path=self.path,
                                   backup=self.backup if record.existed else self.record_file))
        return notes

    # -- the two operations

    def edited_by_hand(self, current: Optional[bytes]) -> bool:
        """X holds something cnnsetup did not write (and is not the original)."""
        record = self.record
        if record is None or record.is_original(current):
            return False
        if current is None:
            return True
        return sha256(current) not in record.written

    def write(self, new: bytes) -> bool:
        """Replace X with `new`, keeping the original first when nothing is kept yet (steps
        1-4). Returns whether hand edits in X were carried into this write."""
        current = self.current()
        owner = self._owner()
        with deferred_signals() as received:
            record = self.record
            carried = False
            if record is None:
                if current is not None:
                    write_atomic(self.backup, current, follow=False, mode=mode_of(self.path),
                                 owner=owner)
                record = Record(existed=current is not None,
                                original_sha256=sha256(current) if current is not None else None,
                                created=now_stamp())
            else:
                carried = self.edited_by_hand(current)
                record.edited = record.edited or carried
            record.pending = {"action": "write", "sha256": sha256(new)}
            self._save(record)
            try:
                write_atomic(self.path, new, owner=owner)
                problem = None if read_regular(self.path) == new else \
                    _("the bytes on disk differ from what was written")
            except CnnsetupError:
                self.undo_write(current, written=False)
                raise
            if problem is not None:
                self.undo_write(current)
                raise FileSafetyError(_("Checking {path} after writing failed ({problem}); the "
                                        "original was put back.").format(path=self.path,
                                                                          problem=problem))
            record.pending = None
            record.written = (record.written + [sha256(new)])[-2:]
            self._save(record)
        _raise_if_interrupted(received, _("{path} was switched; the original is kept in {backup}.")
                              .format(path=self.path, backup=self.backup if record.existed
                                      else self.record_file))
        return carried

    def undo_write(self, previous: Optional[bytes], *, written: bool = True) -> None:
        """Roll back step 3: put `previous` back (when X was `written`) and clear `pending`;
        a journal that then records no change at all is dropped."""
        with deferred_signals():
            if written and previous is None:
                Path(os.path.realpath(self.path)).unlink(missing_ok=True)
            elif written:
                write_atomic(self.path, previous, owner=self._owner())
            record = self.record
            if record is not None:
                record.pending = None
                if not record.written and not record.edited and record.is_original(previous):
                    self._drop()
                else:
                    self._save(record)

    def restore(self, *, force: bool = False, force_command: str = "") -> RestoreOutcome:
        """Put the original back exactly (or remove X when there was none), then drop B and R.
        X holding edits cnnsetup did not write (or carried into a later write) is refused with
        EditedError unless `force`, which keeps X aside first."""
        record = self.record
        assert record is not None
        original = self.original()
        current = self.current()
        edited = not record.is_original(current) and (
            self.edited_by_hand(current) or record.edited)
        kept_aside = None
        if edited and not force:
            raise EditedError(
                _("{path} holds edits made after cnnsetup changed it. Restoring would throw "
                  "those edits away; nothing was changed.").format(path=self.path),
                hint=_("To restore anyway and keep the edited file aside: {command}").format(
                    command=force_command))
        owner = self._owner()
        with deferred_signals() as received:
            if edited and current is not None:
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                kept_aside = free_name(self.path.with_name(
                    f"{self.path.name}.cnnsetup-edited-{stamp}"))
                write_atomic(kept_aside, current, follow=False, mode=mode_of(self.path),
                             owner=owner)
            record.pending = {"action": "restore"}
            self._save(record)
            if original is None:
                # The file cnnsetup created; through a symlink that is the link's target, and
                # the link itself (the user's) stays as it was.
                Path(os.path.realpath(self.path)).unlink(missing_ok=True)
            else:
                write_atomic(self.path, original, owner=owner)
                if read_regular(self.path) != original:
                    raise FileSafetyError(_("Restoring {path} did not read back as the original; "
                                            "the backup is kept.").format(path=self.path))
            self._drop()
        _raise_if_interrupted(received, _("{path} was restored to the original.").format(
            path=self.path))
        return RestoreOutcome(original is None, kept_aside)


def free_name(path: Path) -> Path:
    """`path`, or `path-1`, `path-2`... : the first name nothing (not even a link) holds yet."""
    candidate, n = path, 1
    while os.path.lexists(candidate):
        candidate = path.with_name(f"{path.name}-{n}")
        n += 1
    return candidate


def _remove_command(paths: list[Path]) -> str:
    if sys.platform == "win32":
        return " & ".join(f'del "{p}"' for p in paths)
    import shlex

    return " ".join(["rm", "--"] + [shlex.quote(str(p)) for p in paths])


def mode_of(path: Path) -> int:
    """The permission bits of `path` (through a symlink), or private when it cannot be read."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o600

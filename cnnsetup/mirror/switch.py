"""Switching a .condarc to a mirror, and restoring the user's original: the file-level steps.

`switch` = lock, read, edit (condarc_edit), back up the original the first time, write
atomically, read back and check. `restore` = put the original bytes back (or remove the file if
there was none) and drop the backup. Neither talks to conda; the command does that afterwards.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional

from cnnsetup.errors import CnnsetupError, FileSafetyError
from cnnsetup.i18n import _
from cnnsetup.mirror import channel_probe, condarc_edit, condarc_file, splice, yaml_io
from cnnsetup.mirror.condarc_file import CondarcText
from cnnsetup.mirror.registry import Mirror


@dataclass
class Plan:
    """The file as it is and as it would be after the switch."""

    current: CondarcText
    new_text: str
    new_bytes: bytes
    expected: dict
    warnings: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.new_bytes != self.current.raw or not self.current.exists

    def diff(self) -> str:
        """A unified diff of the change, for people."""
        name = str(self.current.path)
        old = self.current.text.splitlines(keepends=True)
        new = self.new_text.splitlines(keepends=True)
        lines = difflib.unified_diff(old, new, fromfile=name, tofile=name)
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass
class SwitchResult:
    """What `switch` did (or, with dry_run, would do)."""

    mirror: str
    condarc: Path
    changed: bool
    dry_run: bool
    diff: str
    backup: Optional[Path]
    warnings: list[str] = field(default_factory=list)
    original_existed: bool = True  # False: there was no file before cnnsetup's first change
    drops_bom: bool = False  # the change removes a UTF-8 byte-order mark (maybe nothing else)
    notes: list[str] = field(default_factory=list)  # channels left out or kept, and why
    live: Optional[dict] = None  # the live channel check (channel_probe.LiveCheck.to_dict())


@dataclass
class RestoreResult:
    """What `restore` put back."""

    condarc: Path
    removed: bool  # there was no file before cnnsetup, so it was removed
    kept_aside: Optional[Path]


def make_plan(mirror: Mirror, condarc: Path, *, platform: Optional[str] = None,
              fallback_encoding: Optional[str] = None) -> Plan:
    """Read `condarc` and compute the switched file, refusing anything unsafe to edit."""
    platform = sys.platform if platform is None else platform
    current = condarc_file.read(condarc, fallback_encoding=fallback_encoding)
    document = yaml_io.load(current.text, source=str(condarc))
    condarc_edit.validate(document, str(condarc))
    before = yaml_io.plain(document)
    notes = condarc_edit.apply_mirror(document, mirror, windows=platform == "win32")
    expected = yaml_io.plain(document)
    kept = _kept_note(mirror, notes.kept_custom)
    if expected == before and current.exists and not current.had_bom:
        # Nothing to change: not a byte moves (not even mixed line endings).
        return Plan(current, current.text, current.raw, expected, notes.warnings, kept)
    # Only the keys whose value changed are rewritten; every other line keeps its bytes.
    new_text = splice.splice(current.text, document) or yaml_io.dump(document)
    return Plan(current, new_text, current.encode(new_text), expected, notes.warnings, kept)


def _kept_note(mirror: Mirror, entries: list[str]) -> list[str]:
    if not entries:
        return []
    return [_("Kept in custom_channels, not moved to {mirror} (not found there): {entries}").format(
        mirror=mirror.name, entries="; ".join(entries))]


def live_check(mirror: Mirror, condarc: Path, *, platform: Optional[str] = None,
               fallback_encoding: Optional[str] = None,
               timeout: float = channel_probe.SWITCH_TIMEOUT_S) -> channel_probe.Decision:
    """Probe every channel the switch would write (and the user's own mirror channels in
    custom_channels); raise ChannelUnavailableError when `pkgs/main` is dead there."""
    platform = sys.platform if platform is None else platform
    try:
        current = condarc_file.read(condarc, fallback_encoding=fallback_encoding)
        extra = condarc_edit.users_mirror_channels(yaml_io.load(current.text, source=str(condarc)))
    except CnnsetupError:
        extra = []  # make_plan refuses the file right after, with its reason
    live = channel_probe.check(mirror, platform == "win32", extra, timeout=timeout)
    decision = channel_probe.decide(mirror, live, extra)
    decision.live = live
    if decision.refusal:
        raise channel_probe.ChannelUnavailableError(decision.refusal, hint=_(
            "See every channel of every mirror with: {command}").format(command="cnnsetup mirror test"))
    return decision


def switch(mirror: Mirror, condarc: Path, *, dry_run: bool = False, platform: Optional[str] = None,
           fallback_encoding: Optional[str] = None, probe: bool = False) -> SwitchResult:
    """Point `condarc` at `mirror`, keeping the original as a backup the first time.

    With `probe`, every channel is first checked live (see `live_check`): dead ones are left
    out, a dead `pkgs/main` refuses the switch before anything is read for writing."""
    decision = None
    if probe and not mirror.is_official:
        decision = live_check(mirror, condarc, platform=platform,
                              fallback_encoding=fallback_encoding)
        mirror = decision.mirror
    result = _switch(mirror, condarc, dry_run=dry_run, platform=platform,
                     fallback_encoding=fallback_encoding)
    if decision is not None:
        result.notes[:0] = decision.notes
        result.warnings += decision.warnings
        result.live = decision.live.to_dict() if decision.live else None
    return result


def _switch(mirror: Mirror, condarc: Path, *, dry_run: bool, platform: Optional[str],
            fallback_encoding: Optional[str]) -> SwitchResult:
    if dry_run:
        plan = make_plan(mirror, condarc, platform=platform, fallback_encoding=fallback_encoding)
        existing = condarc_file.load_backup(condarc)
        return SwitchResult(mirror.name, condarc, plan.changed, True, plan.diff(),
                            existing.path if existing else None, plan.warnings,
                            existing.existed if existing else plan.current.exists,
                            plan.current.had_bom, list(plan.notes))
    condarc_file.check_writable(condarc)
    with condarc_file.locked(condarc):
        plan = make_plan(mirror, condarc, platform=platform, fallback_encoding=fallback_encoding)
        backup = condarc_file.load_backup(condarc)
        if not plan.changed:
            return SwitchResult(mirror.name, condarc, False, False, "",
                                backup.path if backup else None, plan.warnings,
                                backup.existed if backup else plan.current.exists,
                                notes=list(plan.notes))
        warnings = list(plan.warnings)
        created_backup = backup is None
        if backup is None:
            backup = condarc_file.new_backup(plan.current)
            condarc_file.save_backup(backup, plan.current.raw if plan.current.exists else None)
        elif backup.last_written_sha256 not in (None, condarc_file.sha256(plan.current.raw)):
            warnings.append(
                _(
                    "{path} was edited since cnnsetup last changed it; `cnnsetup mirror "
                    "restore` brings back the original from {created}, not those edits."
                ).format(path=condarc, created=backup.created)
            )
        try:
            condarc_file.write_atomic(condarc, plan.new_bytes)
            _check_written(plan)
        except BaseException:
            if created_backup:
                condarc_file.drop_backup(backup)
            raise
        backup.last_written_sha256 = condarc_file.sha256(plan.new_bytes)
        condarc_file.save_backup(backup)
        return SwitchResult(mirror.name, condarc, True, False, plan.diff(), backup.path, warnings,
                            backup.existed, plan.current.had_bom, list(plan.notes))


def _check_written(plan: Plan) -> None:
    """Read the file back; if it is not what was meant, put the original back and fail."""
    path = plan.current.path
    problem = None
    try:
        written = path.read_bytes()
        if written != plan.new_bytes:
            problem = _("the bytes on disk differ from what was written")
        else:
            text = written.decode(plan.current.encoding).replace("\r\n", "\n")
            if yaml_io.plain(yaml_io.load(text, source=str(path))) != plan.expected:
                problem = _("the file does not read back as intended")
    except (OSError, CnnsetupError) as error:
        problem = str(error)
    if problem is None:
        return
    if plan.current.exists:
        condarc_file.write_atomic(path, plan.current.raw)
    else:
        path.unlink(missing_ok=True)
    raise FileSafetyError(
        _("Checking {path} after writing failed ({problem}); the original was put back.").format(
            path=path, problem=problem
        )
    )


def restore(condarc: Path, *, force: bool = False) -> RestoreResult:
    """Put back the exact original bytes (or remove the file if there was none); drop the backup."""
    if condarc_file.load_backup(condarc) is None:
        raise CnnsetupError(
            _("There is no cnnsetup backup for {path}: nothing to restore.").format(path=condarc)
        )
    with condarc_file.locked(condarc):
        backup = condarc_file.load_backup(condarc)
        if backup is None:  # restored by another run meanwhile
            raise CnnsetupError(
                _("There is no cnnsetup backup for {path}: nothing to restore.").format(path=condarc)
            )
        original = backup.original_bytes()
        try:
            current: Optional[bytes] = condarc.read_bytes()
        except FileNotFoundError:
            current = None
        kept_aside = None
        edited = current is not None and backup.last_written_sha256 not in (
            None, condarc_file.sha256(current)
        ) and current != original
        if edited:
            if not force:
                raise FileSafetyError(
                    _(
                        "{path} was edited after cnnsetup last changed it. Restoring would "
                        "throw those edits away; nothing was changed."
                    ).format(path=condarc),
                    hint=_("To restore anyway and keep the edited file aside: {command}").format(
                        command="cnnsetup mirror restore --force"
                        + (f' --condarc "{condarc}"' if condarc != condarc_file.default_condarc() else "")
                    ),
                )
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            kept_aside = condarc.with_name(f"{condarc.name}.cnnsetup-edited-{stamp}")
            condarc_file.write_atomic(kept_aside, current,  # type: ignore[arg-type]
                                      new_mode=condarc_file.mode_of(condarc))
        if original is None:
            # The file cnnsetup created; through a symlink that is the link's target, and the
            # link itself (the user's) stays as it was.
            Path(os.path.realpath(condarc)).unlink(missing_ok=True)
        else:
            condarc_file.write_atomic(condarc, original)
            if condarc.read_bytes() != original:
                raise FileSafetyError(
                    _("Restoring {path} did not read back as the original; the backup is kept.")
                    .format(path=condarc)
                )
        condarc_file.drop_backup(backup)
        return RestoreResult(condarc, original is None, kept_aside)

"""Switching a .condarc to a mirror, and restoring the user's original: the file-level steps.

`switch` = lock, recover an interrupted run, read, edit (condarc_edit), render the bytes and check
them, then the journal writes (backup first, see journal.py). `restore` = lock, recover, put the
original bytes back (or remove the file if there was none) and drop the backup. Neither talks to
conda; the command does that afterwards.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from cnnsetup.errors import CnnsetupError, ConfigError, FileSafetyError
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
    recovered: list[str] = field(default_factory=list)  # what an interrupted run's repair did
    notes: list[str] = field(default_factory=list)  # channels left out or kept, and why
    live: Optional[dict] = None  # the live channel check (channel_probe.LiveCheck.to_dict())


@dataclass
class RestoreResult:
    """What `restore` put back."""

    condarc: Path
    removed: bool  # there was no file before cnnsetup, so it was removed
    kept_aside: Optional[Path]
    recovered: list[str] = field(default_factory=list)  # what an interrupted run's repair did
    notes: list[str] = field(default_factory=list)  # channels left out or kept, and why
    live: Optional[dict] = None  # the live channel check (channel_probe.LiveCheck.to_dict())


# The keys condarc_edit may change; any other key whose value changes shares it through an alias.
EDITED_KEYS = ("channels", "default_channels", "custom_channels", "channel_alias",
               "custom_multichannels", "show_channel_urls")


def make_plan(mirror: Mirror, condarc: Path, *, platform: Optional[str] = None,
              fallback_encoding: Optional[str] = None) -> Plan:
    """Read `condarc` and compute the switched file, refusing anything unsafe to edit.

    The steps: read the bytes (regular files only) -> split off document markers -> parse ->
    edit (condarc_edit) -> refuse an edit that reaches another key through a YAML alias ->
    render the new bytes -> check that they parse back to the intended settings."""
    platform = sys.platform if platform is None else platform
    current = condarc_file.read(condarc, fallback_encoding=fallback_encoding)
    markers = yaml_io.split_markers(current.text, source=str(condarc))
    document = yaml_io.load(markers.body, source=str(condarc), first_line=markers.first_line)
    condarc_edit.validate(document, str(condarc))
    before = yaml_io.plain(document)
    shared = _shared_containers(document)
    layout = splice.layout(markers.body, document)  # before the edit moves anything
    notes = condarc_edit.apply_mirror(document, mirror, windows=platform == "win32")
    expected = yaml_io.plain(document)
    _refuse_edits_through_aliases(before, expected, shared, condarc)
    kept = _kept_note(mirror, notes.kept_custom)
    if expected == before and current.exists and not current.had_bom:
        # Nothing to change: not a byte moves (not even mixed line endings).
        return Plan(current, current.text, current.raw, expected, notes.warnings, kept)
    # Only the keys whose value changed are rewritten; every other line keeps its bytes. When
    # that text does not read back as intended, the plain dump (correct, less minimal) is used.
    spliced = splice.splice(markers.body, document, layout)
    if spliced is not None:
        plan = _rendered(current, markers, spliced, expected, notes.warnings, kept)
        try:
            if _render_problem(plan) is None:
                return plan
        except Exception:  # noqa: BLE001 - whatever fails to read back, the dump is checked next
            pass
    plan = _rendered(current, markers, yaml_io.dump(document), expected, notes.warnings, kept)
    _check_rendered(plan)
    return plan


def _rendered(current: CondarcText, markers: yaml_io.Markers, body: str, expected: dict,
              warnings: list[str], notes: list[str]) -> Plan:
    new_text = markers.header + body + markers.trailer
    return Plan(current, new_text, current.encode(new_text), expected, warnings, notes)


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




def _shared_containers(document: dict) -> dict[int, list[str]]:
    """For each list or mapping reachable from two or more top-level keys (a YAML anchor `&a`
    and its alias `*a`): the keys that reach it, in file order."""
    reach: dict[int, list[str]] = {}

    def walk(node, key: str, seen: set[int]) -> None:
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                return
            seen.add(id(node))
            owners = reach.setdefault(id(node), [])
            if key not in owners:
                owners.append(key)
            for child in (node.values() if isinstance(node, dict) else node):
                walk(child, key, seen)

    for key, value in document.items():
        walk(value, str(key), set())
    return {node: keys for node, keys in reach.items() if len(keys) > 1}


def _refuse_edits_through_aliases(before: dict, after: dict, shared: dict[int, list[str]],
                                  condarc: Path) -> None:
    """Refuse, naming both keys, an edit that changes a value another key shares. `shared`
    lists the keys in file order, so the first holds the anchor (`&name`) and the others the
    alias (`*name`): the fix names the key of the pair that holds the alias."""
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    pair = None
    for keys in shared.values():
        touched = [k for k in keys if k in changed]
        if not touched or len(keys) < 2:
            continue
        edited = next((k for k in touched if k in EDITED_KEYS), touched[0])
        others = [k for k in keys if k != edited]
        other = next((k for k in others if k not in EDITED_KEYS), others[0])
        pair = (edited, other, max((edited, other), key=keys.index))
        break
    if pair is None:
        outside = sorted(k for k in changed if k not in EDITED_KEYS)
        if not outside:
            return
        # A key outside the edit changed: it can only share a value with one inside.
        edited = next((k for k in sorted(changed) if k in EDITED_KEYS), "channels")
        pair = (edited, outside[0], outside[0])
    edited, other, alias = pair
    raise ConfigError(_(
        "In {path}, {other} and {edited} share one value through a YAML anchor and alias "
        "(&name ... *name). Switching would change {edited}, and with it {other}, so "
        "nothing was changed. Write the value of {alias} out in full instead of the alias, "
        "then try again."
    ).format(path=condarc, other=other, edited=edited, alias=alias))


def _render_problem(plan: Plan) -> Optional[str]:
    """Why the new bytes do not decode and parse back to the intended settings, or None."""
    path = plan.current.path
    try:
        text = plan.new_bytes.decode(plan.current.encoding).replace("\r\n", "\n")
        markers = yaml_io.split_markers(text, source=str(path))
        if yaml_io.plain(yaml_io.load(markers.body, source=str(path))) != plan.expected:
            return _("the file does not read back as intended")
    except (UnicodeError, CnnsetupError) as error:
        return str(error)
    return None


def _check_rendered(plan: Plan) -> None:
    """The new bytes must decode and parse back to the intended settings before they are
    written; otherwise nothing is written."""
    problem = _render_problem(plan)
    if problem is not None:
        path = plan.current.path
        raise FileSafetyError(
            _("The new {path} would not read back as intended ({problem}); nothing was "
              "changed.").format(path=path, problem=problem))


def _switch(mirror: Mirror, condarc: Path, *, dry_run: bool, platform: Optional[str],
            fallback_encoding: Optional[str]) -> SwitchResult:
    """Under the lock: recover what an interrupted run left (journal.recover) -> plan (read,
    edit, render bytes) -> journal write (backup first, then the record, then the file)."""
    with condarc_file.locked(condarc):
        if dry_run:  # read under the lock too: never a half-made backup of a running switch
            condarc_file.check_writable(condarc)  # promise nothing the real run cannot do
            plan = make_plan(mirror, condarc, platform=platform,
                             fallback_encoding=fallback_encoding)
            record = condarc_file.load_backup(condarc)
            return SwitchResult(mirror.name, condarc, plan.changed, True, plan.diff(),
                                _backup_path(condarc, record), plan.warnings,
                                record.existed if record else plan.current.exists,
                                plan.current.had_bom, notes=list(plan.notes))
        condarc_file.check_writable(condarc)
        journal = condarc_file.journal_for(condarc)
        recovered = journal.recover()
        plan = make_plan(mirror, condarc, platform=platform, fallback_encoding=fallback_encoding)
        if not plan.changed:
            return SwitchResult(mirror.name, condarc, False, False, "",
                                _backup_path(condarc, journal.record), plan.warnings,
                                journal.record.existed if journal.record else plan.current.exists,
                                recovered=recovered, notes=list(plan.notes))
        warnings = list(plan.warnings)
        carried = journal.write(plan.new_bytes)
        if carried:
            warnings.append(_(
                "{path} was edited by hand since cnnsetup last changed it; those edits are kept "
                "in the new file. `cnnsetup mirror restore` will ask for --force before it puts "
                "back the original from {created} (and keeps the edited file aside)."
            ).format(path=condarc, created=journal.record.created))
        return SwitchResult(mirror.name, condarc, True, False, plan.diff(),
                            _backup_path(condarc, journal.record), warnings,
                            journal.record.existed, plan.current.had_bom, recovered=recovered,
                            notes=list(plan.notes))


def _backup_path(condarc: Path, record) -> Optional[Path]:
    """The file to point the user at: the original's bytes, or the record when there was none."""
    if record is None:
        return None
    return condarc_file.backup_bytes_path(condarc) if record.existed \
        else condarc_file.backup_meta_path(condarc)


def recover(condarc: Path) -> tuple[list[str], Optional[str]]:
    """Repair what an interrupted switch or restore left beside `condarc` (for `mirror status`):
    (what was done, in words; why the backup cannot be trusted, with its fix, or None)."""
    try:
        with condarc_file.locked(condarc):
            return condarc_file.journal_for(condarc).recover(move_unrecorded=False), None
    except CnnsetupError as error:
        return [], error.message + (f" {error.hint}" if error.hint else "")


def restore(condarc: Path, *, force: bool = False) -> RestoreResult:
    """Put back the exact original bytes (or remove the file if there was none); drop the backup.

    Refuses (FileSafetyError) when the file holds edits cnnsetup did not write, or carried into
    a later switch, unless `force`, which keeps the edited file aside first."""
    with condarc_file.locked(condarc):
        journal = condarc_file.journal_for(condarc)
        recovered = journal.recover()
        if journal.record is None:
            raise CnnsetupError(" ".join(recovered + [
                _("There is no cnnsetup backup for {path}: nothing to restore.").format(
                    path=condarc)]))
        command = "cnnsetup mirror restore --force" + (
            f' --condarc "{condarc}"' if condarc != condarc_file.default_condarc() else "")
        outcome = journal.restore(force=force, force_command=command)
        return RestoreResult(condarc, outcome.removed, outcome.kept_aside, recovered)

"""`cnnsetup mirror status` as data: every file conda would read, which channel keys each sets
and the mirror they point to, the channel URLs conda really uses (from `conda info --json` when
conda is found, else from cnnsetup's merge), which mirror that is, and why.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence

from cnnsetup.i18n import _
from cnnsetup.mirror import conda as conda_calls
from cnnsetup.mirror import registry
from cnnsetup.mirror.confirm import (CORE_CHANNELS, Offender, core_channel_urls,
                                     effective_from_conda_files, find_offenders,
                                     mirror_for_channels)
from cnnsetup.mirror.merge import ConfigProblem, Effective, ReadFile, UrlSource, merge, read_files
from cnnsetup.mirror.search_path import ConfigFile, config_files, user_condarc

BACKUP_SUFFIXES = (".cnnsetup-backup", ".cnnsetup-backup.json")


@dataclass
class FileStatus:
    """One place conda looks: whether a file is there, the channel keys it sets, the mirrors
    its URLs point into, and whether conda loads it."""

    path: str
    origin: str
    exists: bool
    kind: str
    ignored: str
    keys: list[str]
    mirrors: list[str]
    loaded: bool
    skipped: Optional[ConfigProblem] = None
    error: Optional[ConfigProblem] = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "origin": self.origin, "exists": self.exists, "kind": self.kind,
            "ignored": self.ignored or None, "keys": self.keys, "mirrors": self.mirrors,
            "loaded": self.loaded,
            "skipped": self.skipped.to_dict() if self.skipped else None,
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass
class Reason:
    """Why a core channel comes from where it does."""

    channel: str
    url: str
    mirror: Optional[str]
    source: Optional[UrlSource]

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "url": self.url, "mirror": self.mirror,
                "source": self.source.to_dict() if self.source else None}


@dataclass
class MirrorStatus:
    files: list[FileStatus] = field(default_factory=list)
    effective_channels: list[str] = field(default_factory=list)
    mirror: Optional[str] = None
    reasons: list[Reason] = field(default_factory=list)
    source: str = "computed"
    conda: Optional[str] = None
    conda_how: Optional[str] = None
    conda_version: Optional[str] = None
    conda_error: Optional[str] = None  # translated, when conda was found but did not answer
    config_error: Optional[ConfigProblem] = None
    warnings: list[str] = field(default_factory=list)
    condarc: str = ""
    backup: Optional[str] = None  # the backup file cnnsetup keeps beside the condarc, if any
    # With a mix of servers: the mirror most URLs point to, and what keeps conda off it.
    intended: Optional[str] = None
    offenders: list[Offender] = field(default_factory=list)
    obsolete: list["Obsolete"] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The effective channels are known (conda answered, or the files could be merged)."""
        return self.source == "conda" or self.config_error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.to_dict() for f in self.files],
            "effective_channels": list(self.effective_channels),
            "mirror": self.mirror,
            # Each channel's first URL (pkgs/main for defaults); every URL is in "reasons".
            "channels": {r.channel: r.to_dict() for r in reversed(self.reasons)},
            "reasons": [r.to_dict() for r in self.reasons],
            "source": self.source,
            "conda": {"path": self.conda, "found_by": self.conda_how,
                      "version": self.conda_version, "error": self.conda_error},
            "config_error": self.config_error.to_dict() if self.config_error else None,
            "warnings": list(self.warnings),
            "condarc": self.condarc,
            "backup": {"exists": self.backup is not None, "path": self.backup},
            "intended": self.intended,
            "offenders": [o.to_dict() for o in self.offenders],
            "obsolete": [o.to_dict() for o in self.obsolete],
        }


def _urls_in(data: Mapping[str, Any]) -> Iterable[str]:
    for key in ("channels", "default_channels"):
        for value in data.get(key) or []:
            yield str(value)
    custom = data.get("custom_channels")
    if isinstance(custom, dict):
        for name, base in custom.items():
            yield f"{str(base).rstrip('/')}/{name}"
    multi = data.get("custom_multichannels")
    if isinstance(multi, dict):
        for urls in multi.values():
            for value in urls or []:
                yield str(value)
    if data.get("channel_alias"):
        yield str(data["channel_alias"])


def file_mirrors(data: Optional[Mapping[str, Any]]) -> list[str]:
    """The mirrors a file's channel settings point into, in first-seen order."""
    names: list[str] = []
    for url in _urls_in(data or {}):
        mirror = registry.mirror_of_url(url) if "://" in url else None
        if mirror and mirror.name not in names:
            names.append(mirror.name)
    return names


def find_backup(condarc: str) -> Optional[str]:
    """cnnsetup's backup beside `condarc` (the saved bytes or their metadata), if present."""
    for suffix in BACKUP_SUFFIXES:
        if os.path.lexists(condarc + suffix):
            return condarc + suffix
    return None


def _file_status(read: ReadFile, loaded_keys: Optional[set[str]]) -> FileStatus:
    from cnnsetup.mirror.search_path import same_path_key

    loaded = read.loaded if loaded_keys is None else same_path_key(read.file.path) in loaded_keys
    return FileStatus(
        path=read.file.path, origin=read.file.origin, exists=read.file.exists,
        kind=read.file.kind, ignored=read.file.ignored, keys=read.keys,
        mirrors=file_mirrors(read.data), loaded=loaded, skipped=read.skipped, error=read.error,
    )


def _reasons(urls: Sequence[str], effective: Optional[Effective]) -> list[Reason]:
    reasons: list[Reason] = []
    for url, family, base in core_channel_urls(urls):
        mirror = registry.mirror_of_url(base)
        source = effective.source_of(url) if effective else None
        reasons.append(Reason(family, base, mirror.name if mirror else None, source))
    reasons.sort(key=lambda r: CORE_CHANNELS.index(r.channel))
    return reasons


def collect_status(
    conda: Optional[str] = None,
    condarc: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    home: Optional[str] = None,
    platform: Optional[str] = None,
    system_dirs: Optional[Sequence[str]] = None,
    conda_system_dirs: Optional[Sequence[str]] = None,
) -> MirrorStatus:
    """Everything `mirror status` shows. `conda` is an explicit executable (else discovery)."""
    from cnnsetup.mirror.search_path import same_path_key

    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if home is None:
        home = (env.get("USERPROFILE") if platform.startswith("win") else None) or env.get("HOME") or ""
    status = MirrorStatus(condarc=condarc or user_condarc(home, platform))
    status.backup = find_backup(status.condarc)

    location = conda_calls.locate_conda(conda, env, platform, conda_system_dirs)
    facts: Optional[conda_calls.CondaInfo] = None
    if location is not None:
        status.conda, status.conda_how = location.path, location.how
        call = conda_calls.info(location.path)
        if call.ok:
            facts = conda_calls.parse_info(call.data)
            status.conda_version = facts.conda_version or None
        else:
            status.conda_error = call.describe()
            if call.not_found:
                status.conda = None

    root = (facts.root_prefix if facts else None) or (
        conda_calls.root_prefix_of(status.conda) if status.conda else None)
    active = facts.active_prefix if facts else None
    candidates = config_files(env, home, platform, conda_root=root, active_prefix=active,
                              system_dirs=system_dirs)
    reads = read_files(candidates)
    computed = merge(reads, env=env, platform=platform, subdir=(facts.platform if facts else None) or None)
    status.warnings = list(computed.warnings)

    if facts is not None:
        status.source = "conda"
        status.effective_channels = facts.channels
        loaded = {same_path_key(p) for p in facts.config_files}
        status.files = [_file_status(r, loaded) for r in reads]
        known = {same_path_key(c.path) for c in candidates}
        extra = [ConfigFile(p, "conda", os.path.isfile(p)) for p in facts.config_files
                 if same_path_key(p) not in known]
        status.files += [_file_status(r, loaded) for r in read_files(extra)]
        effective = effective_from_conda_files(facts.config_files, env, platform,
                                               subdir=facts.platform or None, candidates=candidates)
    else:
        status.source = "computed"
        status.config_error = computed.error
        status.effective_channels = computed.channel_urls
        status.files = [_file_status(r, None) for r in reads]
        effective = computed
    status.mirror = mirror_for_channels(status.effective_channels)
    status.obsolete = obsolete_channels(status.effective_channels)
    status.reasons = _reasons(status.effective_channels, effective)
    if status.mirror and "://" in status.mirror:  # a mirror given by its address explains them
        for reason in status.reasons:
            reason.mirror = reason.mirror or status.mirror
    if status.mirror is None:
        status.intended = _majority_mirror(status.reasons)
        if status.intended:
            loaded = facts.config_files if facts else computed.config_files
            status.offenders = find_offenders(registry.get(status.intended),
                                              status.effective_channels, effective, loaded,
                                              status.condarc, platform)
    return status


@dataclass
class Obsolete:
    """A channel URL that no longer works as old recipes meant, and what to do instead."""

    url: str
    why: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "why": self.why, "fix": self.fix}


def obsolete_channels(urls: Iterable[str]) -> list[Obsolete]:
    """`pkgs/free` (dropped from `defaults` in conda 4.7), anaconda.org URLs of `pkgs/` channels
    (those live on repo.anaconda.com), and http:// to a mirror cnnsetup knows (all of them serve
    https), once per URL, each with its fix."""
    from cnnsetup.mirror.confirm import strip_subdir

    found: list[Obsolete] = []
    seen: set[str] = set()
    fix_switch = _("Fix: {command} writes the mirror's current channels in its place.")
    for raw in urls:
        url = strip_subdir(str(raw)).rstrip("/")
        if url in seen or "://" not in url:
            continue
        seen.add(url)
        mirror = registry.mirror_of_url(url)
        command = f"cnnsetup mirror {mirror.name if mirror and not mirror.is_official else 'tsinghua'}"
        if url.endswith("/pkgs/free") or "/pkgs/free/" in url:
            found.append(Obsolete(url, _("pkgs/free was removed from defaults in conda 4.7 and "
                                         "is no longer updated."), fix_switch.format(command=command)))
        elif "anaconda.org/pkgs/" in url:
            found.append(Obsolete(url, _("the pkgs/ channels are not served from anaconda.org; "
                                         "conda reaches them through defaults."),
                                  fix_switch.format(command=command)))
        elif url.startswith("http://") and mirror and not mirror.is_official:
            found.append(Obsolete(url, _("{mirror} is served over https; plain http is "
                                         "redirected or refused.").format(mirror=mirror.name),
                                  fix_switch.format(command=command)))
    return found


def file_verdict(path: str, platform: Optional[str] = None) -> tuple[Optional[str], list[Obsolete]]:
    """What one file alone makes conda use: the one mirror (None: a mix, none, or the file is
    broken) and its obsolete channels. `mirror list` and `mirror status` judge by this same rule
    (`mirror_for_channels` over the channel URLs the file gives)."""
    platform = sys.platform if platform is None else platform
    computed = merge(read_files([ConfigFile(path, "user", os.path.isfile(path))]), env={},
                     platform=platform)
    if computed.error:
        return None, []
    return mirror_for_channels(computed.channel_urls), obsolete_channels(computed.channel_urls)


def _majority_mirror(reasons: Sequence[Reason]) -> Optional[str]:
    """The real mirror (not upstream) most core-channel URLs point to, if any."""
    counts: dict[str, int] = {}
    for reason in reasons:
        if reason.mirror and reason.mirror != "official":
            counts[reason.mirror] = counts.get(reason.mirror, 0) + 1
    return max(sorted(counts), key=lambda name: counts[name]) if counts else None

"""Proof that a switch worked: clean conda's index cache, ask `conda info --json` which channel
URLs it now uses, and for every `defaults` / conda-forge / pytorch URL that is not on the chosen
mirror, name the file (or environment variable) that contributes it and how to fix it.

Editing one file is not the same as conda using the mirror: lists merge across every file conda
reads, so an upstream URL from another file survives the switch. Only conda's own answer counts;
cnnsetup's merge (merge.py) is used to say *why* a URL is there.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

from cnnsetup.i18n import _
from cnnsetup.mirror import conda as conda_calls
from cnnsetup.mirror import registry
from cnnsetup.mirror.merge import BUILTIN, Effective, UrlSource, merge, read_files, strip_subdir
from cnnsetup.mirror.search_path import ConfigFile, config_files, same_path_key

CORE_CHANNELS = ("defaults", "conda-forge", "pytorch")
_DEFAULTS_PATH = re.compile(r"/pkgs/(main|r|msys2|free|pro)$")

MANUAL_COMMANDS = (["conda", "clean", "-i"], ["conda", "info"])


def channel_family(url: str) -> Optional[str]:
    """Which core channel a URL serves: "defaults", "conda-forge", "pytorch", or None."""
    base = strip_subdir(url)
    if _DEFAULTS_PATH.search(base):
        return "defaults"
    last = base.rsplit("/", 1)[-1]
    return last if last in ("conda-forge", "pytorch") else None


def expected_base(mirror: registry.Mirror, family: str) -> str:
    """Where `family` should come from once `mirror` is chosen: the mirror when it carries it,
    upstream otherwise (USTC has no `defaults` copy; `official` is upstream)."""
    if family == "defaults":
        return f"{mirror.defaults_base}/pkgs" if mirror.defaults_base else registry.UPSTREAM_DEFAULTS
    return mirror.channel_url(family) or f"{registry.UPSTREAM_ALIAS}/{family}"


def _https(url: str) -> str:
    return "https://" + url[len("http://"):] if url.startswith("http://") else url


def on_expected(url: str, expected: str) -> bool:
    """Whether conda's `url` comes from `expected` (http and https count as one: conda may
    report either for a mirror given by URL)."""
    base, expected = _https(strip_subdir(url)), _https(expected)
    return base == expected or base.startswith(expected + "/")


def core_channel_urls(urls: Sequence[str]) -> Iterator[tuple[str, str, str]]:
    """(url, channel family, channel base URL) for the first URL of each core channel
    (defaults, conda-forge, pytorch) in `urls`; platform subdirs of the same channel count once."""
    seen: set[str] = set()
    for url in urls:
        family = channel_family(url)
        base = strip_subdir(url)
        if family is None or base in seen:
            continue
        seen.add(base)
        yield url, family, base


def mirror_for_channels(urls: Sequence[str]) -> Optional[str]:
    """The one mirror that explains every core-channel URL in `urls`, or None (mixed or none):
    its registry name, or the base URL of a mirror outside the registry laid out like
    Tsinghua's (what `cnnsetup mirror --url BASE` writes), when one such base explains them all.

    A mirror explains a URL when the URL is where that mirror sends its channel (so upstream
    `defaults` is explained by USTC, which has no copy)."""
    core = [u for u in urls if channel_family(u)]
    if not core:
        return None
    named = {m.name for m in (registry.mirror_of_url(strip_subdir(u)) for u in core) if m}
    for name in sorted(named, key=lambda n: n == "official"):  # a real mirror before upstream
        mirror = registry.get(name)
        if mirror and all(on_expected(u, expected_base(mirror, channel_family(u))) for u in core):
            return mirror.name
    if named:  # some of them are on a known mirror or upstream: a mix
        return None
    bases = {registry.base_of_channel(strip_subdir(u)) for u in core}
    if len(bases) == 1 and None not in bases and not _on_a_known_host(next(iter(bases))):
        try:
            mirror = registry.from_url(bases.pop())
        except ValueError:  # not a base cnnsetup could switch to either
            return None
        if all(on_expected(u, expected_base(mirror, channel_family(u))) for u in core):
            return mirror.name
    return None


def _on_a_known_host(url: str) -> bool:
    """Whether `url` is on the host of a mirror in the registry (or upstream's): such a URL that
    no registry mirror explains is a fault in the file, not a mirror of its own."""
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname
    except ValueError:  # "https://[::1": not a host at all
        return False
    return any(urlsplit(prefix).hostname == host
               for mirror in registry.MIRRORS for prefix in mirror.url_prefixes())


@dataclass
class Offender:
    """A core-channel URL conda uses that is not where the chosen mirror sends that channel."""

    channel: str
    url: str  # without the platform folder
    expected: str
    responsible: Optional[str] = None  # file path or CONDA_* variable; None when unknown
    responsible_kind: str = "unknown"  # file | env | builtin | unknown
    key: str = ""
    fix_command: Optional[list[str]] = None
    fix: str = ""  # translated instruction

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel, "url": self.url, "expected": self.expected,
            "responsible": self.responsible, "responsible_kind": self.responsible_kind,
            "key": self.key, "fix_command": self.fix_command, "fix": self.fix,
        }


@dataclass
class SwitchReport:
    """What conda uses after a switch, and what (if anything) still bypasses the mirror."""

    mirror: str
    conda: Optional[str] = None
    clean: Optional[conda_calls.CondaCall] = None
    info: Optional[conda_calls.CondaCall] = None
    source: str = "conda"  # "conda": conda's own answer; "computed": cnnsetup's merge
    channel_urls: list[str] = field(default_factory=list)
    config_files: list[str] = field(default_factory=list)
    offenders: list[Offender] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # translated
    manual_commands: list[list[str]] = field(default_factory=list)
    condarc: Optional[str] = None
    condarc_read: Optional[bool] = None  # did conda load the file cnnsetup wrote?

    @property
    def confirmed(self) -> bool:
        """conda itself answered and every core channel is on the mirror."""
        return self.source == "conda" and not self.offenders

    @property
    def status(self) -> str:
        """"ok" (confirmed), "warn" (an offender, or conda failed), "unchecked" (no conda)."""
        if self.confirmed:
            return "ok"
        return "unchecked" if self.conda is None else "warn"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "mirror": self.mirror,
            "conda": self.conda,
            "source": self.source,
            "clean": self.clean.to_dict() if self.clean else None,
            "info": self.info.to_dict() if self.info else None,
            "channel_urls": list(self.channel_urls),
            "config_files": list(self.config_files),
            "offenders": [o.to_dict() for o in self.offenders],
            "notes": list(self.notes),
            "manual_commands": [list(c) for c in self.manual_commands],
            "condarc": self.condarc,
            "condarc_read": self.condarc_read,
        }

    def lines(self) -> list[tuple[str, str]]:
        """(level, text) pairs for a renderer: level is "ok", "warn" or "info"."""
        out: list[tuple[str, str]] = []
        if self.conda is None:
            out.append(("warn", _("conda was not found, so cnnsetup could not check what conda "
                                  "uses. Run these yourself:")))
            out += [("info", "  " + " ".join(c)) for c in self.manual_commands]
        for note in self.notes:
            out.append(("warn", note))
        if self.confirmed:
            out.append(("ok", self._confirmed_line()))
        for offender in self.offenders:
            out.append(("warn", _("{channel} still comes from {url} (expected {expected}).").format(
                channel=offender.channel, url=offender.url, expected=offender.expected)))
            if offender.fix:
                out.append(("info", "  " + offender.fix))
            if offender.fix_command:
                out.append(("info", "    " + _quoted(offender.fix_command)))
        return out


    def _confirmed_line(self) -> str:
        """Which core channels conda now takes from the mirror and which from upstream (USTC
        carries no defaults; a mirror may lack pytorch), as conda reported them."""
        mirrored, upstream = [], []
        for _url, family, base in core_channel_urls(self.channel_urls):
            known = registry.mirror_of_url(base)
            side = upstream if known is not None and known.is_official else mirrored
            if family not in side:  # defaults is pkgs/main and pkgs/r
                side.append(family)
        command = "conda info --json"
        if mirrored and upstream:
            return _("conda now uses {mirror} for {channels}, and upstream for {others} (checked "
                     "with {command}).").format(mirror=self.mirror, channels=", ".join(mirrored),
                                                others=", ".join(upstream), command=command)
        if mirrored:
            return _("conda now uses {mirror} for {channels} (checked with {command}).").format(
                mirror=self.mirror, channels=", ".join(mirrored), command=command)
        return _("conda now takes {channels} from upstream (checked with {command}).").format(
            channels=", ".join(upstream) or "defaults", command=command)


def _quoted(argv: Sequence[str]) -> str:
    return " ".join(f'"{a}"' if (" " in a or not a) else a for a in argv)


def _unset_command(variable: str, platform: str) -> list[str]:
    if platform.startswith("win"):
        return ["set", f"{variable}="]
    return ["unset", variable]


def _fix_for(offender: Offender, source: UrlSource, condarc: Optional[str], platform: str,
             mirror: Optional[str] = None, condarc_loaded: bool = False) -> None:
    """Fill in who is responsible for `offender` and how to remove it. `condarc_loaded`: conda
    does read `condarc`, which simply lacks the key (so the switch, not the search path, fixes it)."""
    if source.key == "channels":
        who, key = source.channel_source, "channels"
    else:
        who, key = source.key_source, source.key
    offender.key = key
    if who == BUILTIN:
        offender.responsible_kind = "builtin"
        if condarc_loaded and mirror and mirror != "official":
            offender.fix = _("{path} does not set {key}, so conda uses its built-in upstream "
                             "URL for {channel}; this sets it:").format(
                path=condarc, key=key if key == "default_channels" else "custom_channels",
                channel=offender.channel)
            offender.fix_command = ["cnnsetup", "mirror", mirror]
            return
        if key == "default_channels":
            offender.fix = _("No file conda reads sets {key}, so {channel} means upstream. Check "
                             "that conda reads {path}.").format(
                key="default_channels", channel="defaults", path=condarc or "~/.condarc")
        else:
            offender.fix = _("No file conda reads maps {channel} in {key}, so conda builds its URL "
                             "from the default {alias}. Check that conda reads {path}.").format(
                channel=offender.channel, key="custom_channels", alias="channel_alias",
                path=condarc or "~/.condarc")
        return
    if who.startswith("CONDA_"):
        offender.responsible, offender.responsible_kind = who, "env"
        offender.fix = _("The environment variable {var} sets {key}; unset it (and remove it from "
                         "your shell profile or system settings).").format(var=who, key=key)
        offender.fix_command = _unset_command(who, platform)
        return
    offender.responsible, offender.responsible_kind = who, "file"
    if key == "channels":
        offender.fix = _("{path} lists {url} in {key}; remove that entry.").format(
            path=who, url=source.channel, key="channels")
        offender.fix_command = ["conda", "config", "--file", who, "--remove", "channels",
                                source.channel]
    elif key == "channel_alias":
        offender.fix = _("{path} sets {key}, which sends {channel} elsewhere; remove the key.").format(
            path=who, key="channel_alias", channel=offender.channel)
        offender.fix_command = ["conda", "config", "--file", who, "--remove-key", "channel_alias"]
    elif key in ("custom_channels", "custom_multichannels"):
        offender.fix = _("{path} maps {channel} in {key}; remove that entry (the command below "
                         "removes the whole key).").format(path=who, channel=offender.channel,
                                                           key=key)
        offender.fix_command = ["conda", "config", "--file", who, "--remove-key", key]
    else:
        offender.fix = _("{path} adds {url} to {key}; remove the key from that file.").format(
            path=who, url=offender.url, key=key)
        offender.fix_command = ["conda", "config", "--file", who, "--remove-key", key]
    if condarc and same_path_key(who) == same_path_key(condarc):
        offender.fix_command = None  # the file cnnsetup just wrote: run the switch again instead


def _mentioning(files: Sequence[str], url: str) -> Optional[str]:
    """The first file whose text mentions `url` (a last resort when the merge cannot say)."""
    for path in files:
        try:
            with open(path, "rb") as handle:
                if url.encode("utf-8", "replace") in handle.read():
                    return path
        except OSError:
            continue
    return None


def find_offenders(
    mirror: registry.Mirror,
    urls: Sequence[str],
    effective: Optional[Effective],
    files: Sequence[str] = (),
    condarc: Optional[str] = None,
    platform: Optional[str] = None,
) -> list[Offender]:
    """Every core-channel URL in `urls` not on `mirror`, once per channel URL, with its cause."""
    platform = sys.platform if platform is None else platform
    offenders: list[Offender] = []
    for url, family, base in core_channel_urls(urls):
        expected = expected_base(mirror, family)
        if on_expected(url, expected):
            continue
        offender = Offender(family, base, expected)
        source = effective.source_of(url) if effective else None
        if source is not None:
            loaded = bool(condarc) and same_path_key(condarc) in {same_path_key(f) for f in files}
            _fix_for(offender, source, condarc, platform, mirror.name, loaded)
        else:
            path = _mentioning(files, base)
            if path:
                offender.responsible, offender.responsible_kind = path, "file"
                offender.fix = _("{path} mentions {url}; remove it there.").format(path=path, url=base)
            else:
                offender.fix = _("cnnsetup cannot tell which setting adds {url}; run {command} to "
                                 "see every source.").format(url=base,
                                                             command="conda config --show-sources")
        offenders.append(offender)
    return offenders


def _origin_of(path: str, candidates: Sequence[ConfigFile]) -> str:
    for candidate in candidates:
        if same_path_key(candidate.path) == same_path_key(path):
            return candidate.origin
    return "conda"


def effective_from_conda_files(
    paths: Sequence[str],
    env: Mapping[str, str],
    platform: str,
    subdir: Optional[str] = None,
    candidates: Sequence[ConfigFile] = (),
) -> Effective:
    """cnnsetup's merge of exactly the files conda says it loaded (for attribution)."""
    files = [ConfigFile(p, _origin_of(p, candidates), os.path.isfile(p)) for p in paths]
    return merge(read_files(files), env=env, platform=platform, subdir=subdir)


def confirm_switch(
    mirror: Union[registry.Mirror, str],
    conda_path: Optional[str],
    *,
    condarc: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    home: Optional[str] = None,
    platform: Optional[str] = None,
    clean: bool = True,
    clean_timeout: float = conda_calls.CLEAN_TIMEOUT_S,
    info_timeout: float = conda_calls.INFO_TIMEOUT_S,
    system_dirs: Optional[Sequence[str]] = None,
) -> SwitchReport:
    """After writing the config for `mirror`: `conda clean -i -y --json`, then `conda info
    --json`, and every core-channel URL that bypasses the mirror with its cause and fix.

    `conda_path` None means conda was not found: the report then says what to run by hand, and
    (source "computed") what cnnsetup's own merge of the files expects.
    """
    chosen = registry.get(mirror) if isinstance(mirror, str) else mirror
    if chosen is None:
        raise ValueError(f"unknown mirror {mirror!r}")
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    report = SwitchReport(mirror=chosen.name, conda=conda_path, condarc=condarc)
    root = conda_calls.root_prefix_of(conda_path) if conda_path else None
    candidates = config_files(env, home, platform, conda_root=root, system_dirs=system_dirs)

    if conda_path is not None and clean:
        report.clean = conda_calls.clean_index_cache(conda_path, timeout=clean_timeout)
        if report.clean.not_found:
            report.conda = None
        elif not report.clean.ok:
            report.notes.append(report.clean.describe())
            report.manual_commands.append(list(MANUAL_COMMANDS[0]))
    if report.conda is not None:
        report.info = conda_calls.info(report.conda, timeout=info_timeout)
        if report.info.not_found:
            report.conda = None
        elif report.info.ok:
            facts = conda_calls.parse_info(report.info.data)
            report.channel_urls = facts.channels
            report.config_files = facts.config_files
            if condarc:
                loaded = {same_path_key(p) for p in facts.config_files}
                report.condarc_read = same_path_key(condarc) in loaded
                if not report.condarc_read and os.path.isfile(condarc):
                    report.notes.append(_("conda does not read {path}, so the change there has no "
                                          "effect on conda.").format(path=condarc))
            candidates = config_files(env, home, platform, conda_root=facts.root_prefix or root,
                                      system_dirs=system_dirs)
            effective = effective_from_conda_files(
                facts.config_files, env, platform, subdir=facts.platform or None,
                candidates=candidates)
            report.offenders = find_offenders(chosen, facts.channels, effective,
                                              facts.config_files, condarc, platform)
            return report
        else:
            report.notes.append(report.info.describe())
            report.manual_commands.append(list(MANUAL_COMMANDS[1]))

    if report.conda is None:
        report.manual_commands = [list(c) for c in MANUAL_COMMANDS]
    # No answer from conda: say what the files themselves give.
    report.source = "computed"
    effective = merge(read_files(candidates), env=env, platform=platform)
    if effective.error:
        report.notes.append(effective.error.describe())
        return report
    report.channel_urls = effective.channel_urls
    report.config_files = effective.config_files
    report.offenders = find_offenders(chosen, effective.channel_urls, effective,
                                      effective.config_files, condarc, platform)
    return report

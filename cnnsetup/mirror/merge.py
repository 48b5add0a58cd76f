"""What conda makes of its configuration files: the effective channel settings and the URLs it
searches, computed without conda (the fallback when conda is absent, and the way to say which
file put a URL there).

Rules (conda 26.x, checked against ../shared/conda-golden/):
- Files are read in search-path order (search_path.py), then `CONDA_<KEY>` variables.
- Single values: the last one wins. Lists: later sources' entries first, then earlier entries
  not yet listed. Maps: merged key by key, later wins. A key no source sets keeps conda's
  default; `channels` has none (since conda 25.9), so no `channels` means no channels.
- `defaults` expands to `default_channels` (reserved: it wins over a `custom_multichannels`
  entry of the same name). A bare name resolves through `custom_channels` (which also holds
  every `default_channels` entry, keyed by its path), else through `channel_alias`.
- A file conda cannot scan is skipped with a warning; a YAML structure error, a duplicate key or a
  channel key of the wrong type stops conda (exit 1).
Not modelled: the `#!final` / `#!top` / `#!bottom` markers, tokens in URLs, the `local` channel.
"""

from __future__ import annotations

import locale
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from cnnsetup.i18n import _
from cnnsetup.mirror.search_path import ConfigFile, config_files

CHANNEL_KEYS = ("channels", "default_channels", "custom_channels", "custom_multichannels",
                "channel_alias")
BUILTIN = "built-in"
DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org"
DEFAULT_CHANNELS_UNIX = ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")
DEFAULT_CHANNELS_WIN = DEFAULT_CHANNELS_UNIX + ("https://repo.anaconda.com/pkgs/msys2",)
DEFAULT_CUSTOM_CHANNELS = {"pkgs/pro": "https://repo.anaconda.com"}
KNOWN_SUBDIRS = frozenset((
    "noarch", "emscripten-wasm32", "wasi-wasm32", "freebsd-64", "linux-32", "linux-64",
    "linux-aarch64", "linux-armv6l", "linux-armv7l", "linux-ppc64", "linux-ppc64le",
    "linux-riscv64", "linux-s390x", "osx-64", "osx-arm64", "win-32", "win-64", "win-arm64",
    "zos-z",
))
# `CONDA_<KEY>` variables that set channel keys; lists are comma-separated.
ENV_LISTS = {"channels": "CONDA_CHANNELS", "default_channels": "CONDA_DEFAULT_CHANNELS"}
ENV_SCALARS = {"channel_alias": "CONDA_CHANNEL_ALIAS", "show_channel_urls": "CONDA_SHOW_CHANNEL_URLS"}

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass
class ConfigProblem:
    """Why conda refuses (error) or skips (warning) a file: the YAML error's name and place."""

    name: str
    path: str
    line: Optional[int] = None
    column: Optional[int] = None
    detail: str = ""

    def describe(self) -> str:
        where = self.path
        if self.line is not None:
            where = _("{path}, line {line}, column {column}").format(
                path=self.path, line=self.line, column=self.column
            )
        return _("{where}: {detail}").format(where=where, detail=self.detail)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "line": self.line, "column": self.column,
                "detail": self.detail}


@dataclass
class ReadFile:
    """One configuration file as conda reads it: its top-level mapping, or why it has none."""

    file: ConfigFile
    data: Optional[dict] = None
    skipped: Optional[ConfigProblem] = None  # why conda skips the file (and carries on)
    error: Optional[ConfigProblem] = None  # why conda refuses to start

    @property
    def warning(self) -> str:
        """conda's own warning when it skips the file, word for word (not translated: it is
        what conda prints), or ""."""
        if self.skipped is None:
            return ""
        return f"Ignoring configuration file ({self.file.path}) due to error:\n  {self.skipped.detail}"

    @property
    def loaded(self) -> bool:
        """Counted by conda as a loaded file (`conda info`'s config_files)."""
        return bool(self.data)

    @property
    def keys(self) -> list[str]:
        """The channel keys this file sets, in the file's order."""
        return [k for k in (self.data or {}) if k in CHANNEL_KEYS]


@dataclass(frozen=True)
class Sourced:
    """A value and where it came from: a file path, a `CONDA_*` variable, or BUILTIN."""

    value: Any
    source: str


@dataclass(frozen=True)
class UrlSource:
    """Why conda searches `url`: the `channels` entry that led there (and who listed it), and
    the key that turned the entry into this URL (and who set that key)."""

    url: str
    channel: str
    channel_source: str
    key: str
    key_source: str

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "channel": self.channel, "channel_source": self.channel_source,
                "key": self.key, "key_source": self.key_source}


@dataclass
class Effective:
    """The merged result: effective channel settings, the URLs searched, and their sources."""

    channels: list[Sourced] = field(default_factory=list)
    default_channels: list[Sourced] = field(default_factory=list)
    custom_channels: dict[str, Sourced] = field(default_factory=dict)  # name -> full URL
    custom_multichannels: dict[str, list[Sourced]] = field(default_factory=dict)
    channel_alias: Sourced = Sourced(DEFAULT_CHANNEL_ALIAS, BUILTIN)
    show_channel_urls: Sourced = Sourced(None, BUILTIN)
    urls: list[UrlSource] = field(default_factory=list)
    files: list[ReadFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[ConfigProblem] = None

    @property
    def exit_code(self) -> int:
        """What conda would exit with: 1 when a file stops it, else 0."""
        return 1 if self.error else 0

    @property
    def channel_urls(self) -> list[str]:
        return [u.url for u in self.urls]

    @property
    def config_files(self) -> list[str]:
        """The files conda loads, in order (`conda info --json`'s config_files)."""
        return [r.file.path for r in self.files if r.loaded]

    def config(self) -> dict[str, Any]:
        """The effective settings in the shape `conda config --show` reports them."""
        return {
            "channels": [s.value for s in self.channels],
            "default_channels": [s.value for s in self.default_channels],
            "custom_channels": {k: s.value for k, s in self.custom_channels.items()},
            "custom_multichannels": {
                k: [s.value for s in v] for k, v in self.custom_multichannels.items()
            },
            "channel_alias": self.channel_alias.value,
            "show_channel_urls": self.show_channel_urls.value,
        }

    def responsible_for(self, url: str) -> Optional[str]:
        """The file path or `CONDA_*` variable that makes conda search `url` (BUILTIN when
        conda's own defaults do), or None when `url` is not in the effective list."""
        source = self.source_of(url)
        if source is None:
            return None
        return source.channel_source if source.key == "channels" else source.key_source

    def source_of(self, url: str) -> Optional[UrlSource]:
        """Who put `url` (with or without its platform folder) into the effective list."""
        wanted = url.rstrip("/")
        for item in self.urls:
            if item.url == wanted or strip_subdir(item.url) == wanted:
                return item
        return None


# ---------------------------------------------------------------- reading files


def _yaml():
    from ruamel.yaml import YAML  # imported here: only commands that read YAML pay for it

    return YAML(typ="rt")


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node


def _problem(error: Exception, path: str, text: str = "") -> ConfigProblem:
    """A YAML error in the words every command uses (yaml_io.describe)."""
    from cnnsetup.mirror.yaml_io import describe

    problem = describe(error, text, path)
    return ConfigProblem(name=type(error).__name__, path=path, line=problem.line,
                         column=problem.column, detail=problem.problem)


def read_file(file: ConfigFile, encoding: Optional[str] = None) -> ReadFile:
    """Read one file the way conda does (system encoding, ruamel.yaml round trip)."""
    from ruamel.yaml.reader import ReaderError
    from ruamel.yaml.scanner import ScannerError
    from ruamel.yaml.error import YAMLError

    result = ReadFile(file)
    if not file.readable:
        return result
    encoding = encoding or locale.getpreferredencoding(False)
    try:
        with open(file.path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        result.skipped = ConfigProblem(type(error).__name__, file.path, detail=str(error))
        return result
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        result.error = ConfigProblem("UnicodeDecodeError", file.path, detail=str(error))
        return result
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # what open() in text mode does
    try:
        loaded = _yaml().load(text)
    except (ScannerError, ReaderError) as error:
        result.skipped = _problem(error, file.path, text)
        return result
    except YAMLError as error:
        result.error = _problem(error, file.path, text)
        return result
    if loaded is None:
        return result
    if not isinstance(loaded, dict):
        result.skipped = ConfigProblem("NotAMapping", file.path,
                                       detail=f"top level is a {type(loaded).__name__}")
        return result
    result.data = _plain(loaded)
    return result


def read_files(files: Sequence[ConfigFile], encoding: Optional[str] = None) -> list[ReadFile]:
    """Every readable file of `files`, read; missing ones are kept, unread, for listing."""
    return [read_file(f, encoding) for f in files]


# ---------------------------------------------------------------- merging


def _expand(value: Any, env: Mapping[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    return _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), value)


def _merge_lists(matches: list[tuple[str, list]]) -> list[Sourced]:
    """conda's rule: later sources' entries first, then earlier ones not yet listed."""
    merged: list[Sourced] = []
    seen: set[str] = set()
    for source, values in reversed(matches):
        for value in values:
            if value not in seen:
                seen.add(value)
                merged.append(Sourced(value, source))
    return merged


def has_scheme(value: str) -> bool:
    return bool(_SCHEME.match(value))


def _is_path(value: str) -> bool:
    return value.startswith(("/", "~", "./", "\\")) or bool(re.match(r"^[A-Za-z]:[\\/]", value))


def _path_url(value: str) -> str:
    path = value.replace("\\", "/")
    return "file://" + (path if path.startswith("/") else "/" + path)


def strip_subdir(url: str) -> str:
    """`url` without a trailing platform folder (`.../linux-64`, `.../noarch`)."""
    base, _sep, last = url.rstrip("/").rpartition("/")
    return base if last in KNOWN_SUBDIRS and base else url.rstrip("/")


def _split_platform(value: str) -> tuple[str, Optional[str]]:
    base, _sep, last = value.rstrip("/").rpartition("/")
    if base and last in KNOWN_SUBDIRS:
        return base, last
    return value.rstrip("/"), None


def _without_scheme(url: str) -> str:
    return _SCHEME.sub("", url)


def simple_channel(alias: str, url: str, name: Optional[str] = None) -> tuple[str, str]:
    """(location URL, channel name) as conda's Channel.make_simple_channel splits them."""
    url = url.rstrip("/")
    if has_scheme(url):
        if name:
            return url, name.strip("/")
        alias_location = _without_scheme(alias)
        if alias_location and _without_scheme(url).startswith(alias_location):
            return alias, _without_scheme(url)[len(alias_location):].strip("/")
        scheme = _SCHEME.match(url).group(0)
        host, _slash, path = url[len(scheme):].partition("/")
        return scheme + host, path.strip("/")
    return alias, (name or url).strip("/")


def _join(location: str, name: str) -> str:
    return f"{location}/{name}" if name else location


def default_subdir(platform: Optional[str] = None, machine: Optional[str] = None) -> str:
    """conda's platform folder for this machine, e.g. linux-64, win-64, osx-arm64."""
    import platform as platform_module

    platform = sys.platform if platform is None else platform
    machine = (machine or platform_module.machine() or "x86_64").lower()
    system = "win" if platform.startswith("win") else "osx" if platform == "darwin" else "linux"
    if machine in ("x86_64", "amd64"):
        return f"{system}-64"
    if machine in ("aarch64", "arm64"):
        return "linux-aarch64" if system == "linux" else f"{system}-arm64"
    return f"{system}-{machine}"


def _typed(read: ReadFile, key: str, value: Any, kind: type) -> Optional[ConfigProblem]:
    if value is None or isinstance(value, kind):
        return None
    expected = "sequence" if kind is list else "map" if kind is dict else kind.__name__
    return ConfigProblem(
        "InvalidTypeError", read.file.path,
        detail=f"Parameter {key} = {value!r} declared in {read.file.path} has type "
               f"{type(value).__name__}; valid types: {expected}",
    )


def merge(
    files: Sequence[ReadFile],
    env: Optional[Mapping[str, str]] = None,
    platform: Optional[str] = None,
    subdir: Optional[str] = None,
) -> Effective:
    """Combine read files (in search-path order) and `CONDA_*` variables as conda does."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    subdir = env.get("CONDA_SUBDIR") or subdir or default_subdir(platform)
    result = Effective(files=list(files))

    lists: dict[str, list[tuple[str, list]]] = {"channels": [], "default_channels": []}
    maps: dict[str, list[tuple[str, dict]]] = {"custom_channels": [], "custom_multichannels": []}
    scalars: dict[str, list[tuple[str, Any]]] = {"channel_alias": [], "show_channel_urls": []}
    for read in files:
        if read.warning:
            result.warnings.append(read.warning)
        if read.error and result.error is None:
            result.error = read.error
        if not read.data:
            continue
        source = read.file.path
        for key in lists:
            if key in read.data:
                value = read.data[key]
                result.error = result.error or _typed(read, key, value, list)
                if isinstance(value, list):
                    lists[key].append((source, [str(_expand(v, env)) for v in value if v is not None]))
                elif value is None:
                    lists[key].append((source, []))
        for key in maps:
            if key in read.data:
                value = read.data[key]
                result.error = result.error or _typed(read, key, value, dict)
                maps[key].append((source, value if isinstance(value, dict) else {}))
        for key in scalars:
            if key in read.data and read.data[key] is not None:
                scalars[key].append((source, _expand(read.data[key], env)))
    for key, variable in ENV_LISTS.items():
        if env.get(variable):
            values = [v.strip() for v in env[variable].split(",") if v.strip()]
            lists[key].append((variable, values))
    for key, variable in ENV_SCALARS.items():
        if env.get(variable):
            value: Any = env[variable]
            if key == "show_channel_urls":
                value = value.strip().lower() in ("1", "true", "yes", "on")
            scalars[key].append((variable, value))
    if result.error:
        return result

    for key, matches in scalars.items():
        if matches:
            source, value = matches[-1]
            if key == "channel_alias":
                value = str(value).rstrip("/")
            setattr(result, key, Sourced(value, source))
    alias = result.channel_alias.value

    result.channels = _merge_lists(lists["channels"])
    if lists["default_channels"]:
        result.default_channels = _merge_lists(lists["default_channels"])
    else:
        builtin = DEFAULT_CHANNELS_WIN if subdir.startswith("win-") else DEFAULT_CHANNELS_UNIX
        result.default_channels = [Sourced(u, BUILTIN) for u in builtin]

    # custom_multichannels: user entries, then the reserved `defaults` (which wins).
    multichannels: dict[str, list[Sourced]] = {}
    by_name: dict[str, list[tuple[str, list]]] = {}
    for source, mapping in maps["custom_multichannels"]:
        for name, urls in mapping.items():
            if isinstance(urls, list):
                by_name.setdefault(name, []).append((source, [str(_expand(u, env)) for u in urls]))
    for name, matches in by_name.items():
        multichannels[name] = _merge_lists(matches)
    multichannels["defaults"] = result.default_channels
    # Resolved: name -> [(location, channel name, Sourced entry)]
    resolved_multi = {
        name: [(*simple_channel(alias, s.value), s) for s in entries]
        for name, entries in multichannels.items()
    }
    result.custom_multichannels = {
        name: [Sourced(_join(loc, ch), s.source) for loc, ch, s in entries]
        for name, entries in resolved_multi.items()
    }

    # custom_channels: every multichannel member by its name, then the user's map (or, when no
    # source sets one, conda's built-in map).
    table: dict[str, tuple[str, str, str, str]] = {}  # name -> (location, key, source, full)
    for mc_name, entries in resolved_multi.items():
        key = "default_channels" if mc_name == "defaults" else "custom_multichannels"
        for location, ch, s in entries:
            table[ch] = (location, key, s.source, _join(location, ch))
    custom: dict[str, Sourced] = {}
    if maps["custom_channels"]:
        for source, mapping in maps["custom_channels"]:
            for name, base in mapping.items():
                custom[str(name)] = Sourced(str(_expand(base, env)), source)
    else:
        custom = {k: Sourced(v, BUILTIN) for k, v in DEFAULT_CUSTOM_CHANNELS.items()}
    for name, base in custom.items():
        location, ch = simple_channel(alias, base.value, name)
        table[ch] = (location, "custom_channels", base.source, _join(location, ch))
    result.custom_channels = {name: Sourced(entry[3], entry[2]) for name, entry in table.items()}

    subdirs = (subdir, "noarch")
    seen: set[str] = set()

    def add(base: str, platform_dir: Optional[str], entry: Sourced, key: str, key_source: str):
        platforms = subdirs if platform_dir is None else (
            (platform_dir,) if platform_dir == "noarch" else (platform_dir, "noarch"))
        for p in platforms:
            url = f"{base}/{p}"
            if url not in seen:
                seen.add(url)
                result.urls.append(UrlSource(url, entry.value, entry.source, key, key_source))

    for entry in result.channels:
        value = entry.value
        if value in resolved_multi:
            key = "default_channels" if value == "defaults" else "custom_multichannels"
            for location, ch, member in resolved_multi[value]:
                base, platform_dir = _split_platform(_join(location, ch))
                add(base, platform_dir, entry, key, member.source)
        elif value == "local":
            continue
        elif has_scheme(value) or _is_path(value):
            url = value if has_scheme(value) else _path_url(value)
            base, platform_dir = _split_platform(url)
            add(base, platform_dir, entry, "channels", entry.source)
        else:
            name, platform_dir = _split_platform(value)
            probe = name
            while True:
                if probe in table:
                    location, key, key_source, _full = table[probe]
                    add(_join(location, name), platform_dir, entry, key, key_source)
                    break
                shorter = probe.rsplit("/", 1)[0]
                if shorter == probe:
                    add(_join(alias, name), platform_dir, entry, "channel_alias",
                        result.channel_alias.source)
                    break
                probe = shorter
    return result


def compute(
    env: Optional[Mapping[str, str]] = None,
    home: Optional[str] = None,
    platform: Optional[str] = None,
    conda_root: Optional[str] = None,
    active_prefix: Optional[str] = None,
    system_dirs: Optional[Sequence[str]] = None,
    subdir: Optional[str] = None,
    encoding: Optional[str] = None,
) -> Effective:
    """Find, read and merge every configuration file conda would read on this machine."""
    env = os.environ if env is None else env
    candidates = config_files(env, home, platform, conda_root, active_prefix, system_dirs)
    return merge(read_files(candidates, encoding), env=env, platform=platform, subdir=subdir)

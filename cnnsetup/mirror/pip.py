"""pip's package index: read as pip reads it, changed one line at a time, backed up byte for byte.

Reading. pip loads its configuration files in an order its documentation gives
(https://pip.pypa.io/en/stable/topics/configuration/; the code is
`pip/_internal/configuration.py`, `get_configuration_files` and `Configuration.iter_config_files`):

    global   $XDG_CONFIG_DIRS/pip/pip.conf (default /etc/xdg/pip/pip.conf), then /etc/pip.conf
             (Windows: C:\\ProgramData\\pip\\pip.ini; macOS: /Library/Application Support/pip/pip.conf)
    user     ~/.pip/pip.conf (legacy), then $XDG_CONFIG_HOME/pip/pip.conf
             (Windows: %USERPROFILE%\\pip\\pip.ini, then %APPDATA%\\pip\\pip.ini); not read at all
             when PIP_CONFIG_FILE names an existing file
    site     <sys.prefix>/pip.conf (pip.ini on Windows)
    env      the file PIP_CONFIG_FILE names (os.devnull there: pip reads no file at all)
    env_var  PIP_INDEX_URL and the other PIP_* variables

A later file wins key by key; for `pip install`, an `[install]` option beats a `[global]` one
whatever file holds it, and PIP_INDEX_URL beats both. Every file is read here with the parser pip
uses (`configparser.RawConfigParser`), so each value is attributed to the one file that sets it.
(`pip config debug` is no substitute: before pip 24 it printed the values of a whole variant
under every file of that variant, so it cannot tell which file sets what.)

Writing. cnnsetup changes only `index-url` in the `[global]` section of the file
`pip config --user` writes (the last user file). The file is edited as text (`ini_edit`): one line
changes or is added, comments and everything else keep their bytes; pip's own writer would drop
every comment. The result is read back with pip's parser and must differ from the original in
that one value only, or nothing is written.

Backup. Before cnnsetup's first change, the exact bytes of that file (or the fact that there was
none) go into a record beside the .condarc backup (`<condarc>.cnnsetup-pip.json`, one atomic
write). `restore_backup` puts those bytes back or removes the file cnnsetup created, and refuses
without `force` when the file was edited after cnnsetup last wrote it (`force` keeps the edited
file aside).
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import hashlib
import json
import locale
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional

from cnnsetup.errors import CnnsetupError, FileSafetyError
from cnnsetup.i18n import _
from cnnsetup.mirror import ini_edit
from cnnsetup.paths import ensure_dir

SECTION = "global"
OPTION = "index-url"
KEY = "global.index-url"
PYPI = "https://pypi.org/simple"
RECORD_SUFFIX = ".cnnsetup-pip.json"
# The keys that decide `pip install`'s index, weakest first: [install] beats [global].
INSTALL_INDEX_KEYS = ("global.index-url", "install.index-url")


class PipConfigError(CnnsetupError):
    """A pip configuration file cnnsetup cannot read or safely change."""


def normalize_name(name: str) -> str:
    """An option name as pip compares it: lower case, `_` as `-`, no leading `--`
    (pip's `configuration._normalize_name`)."""
    name = name.lower().replace("_", "-")
    return name[2:] if name.startswith("--") else name


def _is_index_option(name: str) -> bool:
    return normalize_name(name.strip()) == OPTION


# --- where pip looks ---------------------------------------------------------------------------

def config_files(env: Optional[Mapping[str, str]] = None, platform: Optional[str] = None,
                 prefix: Optional[str] = None) -> dict[str, list[Path]]:
    """pip's configuration files by variant ("global", "user", "site"), each list in pip's
    reading order (a later file wins). `prefix` is the `sys.prefix` of the Python whose pip is
    meant (default: this one). Follows pip's `get_configuration_files` with its `appdirs`."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    prefix = sys.prefix if prefix is None else prefix
    if platform == "win32":
        name = "pip.ini"
        home = Path(env.get("USERPROFILE") or env.get("HOME") or Path.home())
        appdata = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        programdata = Path(env.get("PROGRAMDATA") or "C:\\ProgramData")
        return {
            "global": [programdata / "pip" / name],
            "user": [home / "pip" / name, appdata / "pip" / name],
            "site": [Path(prefix) / name],
        }
    name = "pip.conf"
    home = Path(env.get("HOME") or Path.home())
    if platform == "darwin":
        support = home / "Library" / "Application Support" / "pip"
        user_dir = support if support.is_dir() else home / ".config" / "pip"
        global_files = [Path("/Library/Application Support/pip") / name]
    else:
        xdg_home = env.get("XDG_CONFIG_HOME", "").strip()
        user_dir = Path(xdg_home if xdg_home else home / ".config") / "pip"
        xdg_dirs = env.get("XDG_CONFIG_DIRS", "").strip() or "/etc/xdg"
        global_files = [Path(os.path.expanduser(d.rstrip("/"))) / "pip" / name
                        for d in xdg_dirs.split(os.pathsep) if d] + [Path("/etc") / name]
    return {
        "global": global_files,
        "user": [home / ".pip" / name, user_dir / name],
        "site": [Path(prefix) / name],
    }


def user_file(env: Optional[Mapping[str, str]] = None, platform: Optional[str] = None) -> Path:
    """The file `pip config --user set` writes: the last user file (the current location)."""
    return config_files(env, platform)["user"][-1]


# --- what pip reads ----------------------------------------------------------------------------

@dataclass
class ConfigFile:
    """One file pip reads: its variant, path, and the values it sets itself ("section.key")."""

    variant: str  # "global" | "user" | "site" | "env"
    path: str
    exists: bool
    values: dict[str, str] = field(default_factory=dict)
    error: Optional[str] = None  # pip would stop on this file: it cannot be parsed

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "path": self.path, "exists": self.exists,
                "values": dict(self.values), "error": self.error}


@dataclass(frozen=True)
class Override:
    """Something that makes pip use another index than the user file's `global.index-url`."""

    kind: str  # "env_var" | "user_file_ignored" | "global" | "site" | "env_file" | "section"
    where: str  # a variable name or a file path
    key: str
    value: str
    wins: bool  # True: beats the user file; False: only used when the user file sets nothing

    def describe(self) -> str:
        if self.kind == "env_var":
            return _("The environment variable {var} sets pip's index to {value}; it wins over "
                     "every pip config file.").format(var=self.where, value=self.value)
        if self.kind == "user_file_ignored":
            return _("{var} points at {path}, so pip ignores your user config file.").format(
                var="PIP_CONFIG_FILE", path=self.where)
        if self.wins:
            return _("{path} sets {key} = {value}, which wins over your user config file.").format(
                path=self.where, key=self.key, value=self.value)
        return _("{path} also sets {key} = {value} (used when your user file sets nothing).").format(
            path=self.where, key=self.key, value=self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "key": self.key, "value": self.value,
                "wins": self.wins}


@dataclass
class PipConfig:
    """pip's configuration as pip itself would load it, file by file."""

    files: list[ConfigFile]
    env_vars: dict[str, str]  # the PIP_* variables that set an index, as written
    config_file_var: Optional[str]  # PIP_CONFIG_FILE
    no_files: bool  # PIP_CONFIG_FILE is os.devnull: pip reads no file at all
    user_file: str

    def _merged(self) -> dict[str, tuple[str, str]]:
        """"section.key" -> (value, file that set it), later files winning as in pip."""
        merged: dict[str, tuple[str, str]] = {}
        if self.no_files:
            return merged
        for entry in self.files:
            for key, value in entry.values.items():
                merged[key] = (value, entry.path)
        return merged

    def user_value(self, key: str = KEY) -> Optional[str]:
        """`key` as the user files set it (the later user file wins), or None."""
        value = None
        for entry in self.files:
            if entry.variant == "user" and key in entry.values:
                value = entry.values[key]
        return value

    def install_index(self) -> tuple[str, str]:
        """(the index `pip install` uses, where it comes from: a variable, a file, or "PyPI")."""
        if self.env_vars.get("PIP_INDEX_URL"):
            return self.env_vars["PIP_INDEX_URL"], "PIP_INDEX_URL"
        merged = self._merged()
        for key in reversed(INSTALL_INDEX_KEYS):
            if key in merged and merged[key][0]:
                return merged[key]
        return PYPI, "PyPI"

    def overrides(self) -> list[Override]:
        """Everything besides the user file's `global.index-url` that decides pip's index."""
        found: list[Override] = []
        if self.env_vars.get("PIP_INDEX_URL"):
            found.append(Override("env_var", "PIP_INDEX_URL", OPTION,
                                  self.env_vars["PIP_INDEX_URL"], True))
        if self.config_file_var and (self.no_files or os.path.exists(self.config_file_var)):
            found.append(Override("user_file_ignored", self.config_file_var, "", "", True))
        if self.no_files:
            return found
        for entry in self.files:
            for key in INSTALL_INDEX_KEYS:
                value = entry.values.get(key)
                if value is None or (entry.path == self.user_file and key == KEY):
                    continue
                # Files load global < user < site < env; [install] beats [global] from any file.
                wins = key != KEY or entry.variant in ("site", "env")
                kind = "section" if key != KEY else {"env": "env_file"}.get(entry.variant,
                                                                           entry.variant)
                found.append(Override(kind, entry.path, key, value, wins))
        return found

    def errors(self) -> list[ConfigFile]:
        return [entry for entry in self.files if entry.error]


def _decode(raw: bytes, path: Path) -> str:
    """The file's text: UTF-8, else the locale's encoding (which pip itself opens files with)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        fallback = locale.getpreferredencoding(False) or "utf-8"
        with contextlib.suppress(UnicodeDecodeError, LookupError):
            if fallback.lower().replace("-", "") != "utf8":
                return raw.decode(fallback)
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise PipConfigError(_("{path}, line {line}, column {column}: this byte is not valid "
                               "text ({encoding}).").format(path=path, line=line, column=column,
                                                            encoding="UTF-8")) from None


def parse_values(text: str) -> dict[str, str]:
    """The values one file sets, as pip's `Configuration._load_file` sees them:
    {"section.key": value}, keys normalized. Raises configparser.Error as pip would fail."""
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    values = {}
    for section in parser.sections():
        for name, value in parser.items(section):
            values[f"{section}.{normalize_name(name)}"] = value
    return values


def _read_file(variant: str, path: Path) -> ConfigFile:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ConfigFile(variant, str(path), False)
    except (IsADirectoryError, PermissionError, OSError) as error:
        return ConfigFile(variant, str(path), True, error=str(error.strerror or error))
    try:
        return ConfigFile(variant, str(path), True, parse_values(_decode(raw, path)))
    except PipConfigError as error:
        return ConfigFile(variant, str(path), True, error=error.message)
    except configparser.Error as error:
        return ConfigFile(variant, str(path), True, error=str(error).splitlines()[0])


def read_config(env: Optional[Mapping[str, str]] = None, platform: Optional[str] = None,
                prefix: Optional[str] = None) -> PipConfig:
    """Every file pip reads, in its order, each with the values it sets itself; no subprocess."""
    env = os.environ if env is None else env
    paths = config_files(env, platform, prefix)
    config_file_var = env.get("PIP_CONFIG_FILE") or None
    no_files = config_file_var == os.devnull
    skip_user = bool(config_file_var) and os.path.exists(config_file_var)
    files: list[ConfigFile] = []
    for variant in ("global", "user", "site"):
        if variant == "user" and skip_user:
            continue
        files += [_read_file(variant, path) for path in paths[variant]]
    if config_file_var and not no_files:
        files.append(_read_file("env", Path(config_file_var)))
    env_vars = {name: env[name] for name in ("PIP_INDEX_URL",) if env.get(name)}
    return PipConfig(files, env_vars, config_file_var, no_files, str(paths["user"][-1]))


def prefix_of(python: Optional[str]) -> Optional[str]:
    """`sys.prefix` of another Python (for its site file), or None for this one."""
    if python is None or os.path.realpath(python) == os.path.realpath(sys.executable):
        return None
    try:
        out = subprocess.run([python, "-c", "import sys; print(sys.prefix)"],
                             capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        raise PipConfigError(_("Could not run {command}: {error}").format(
            command=python, error=_("no such Python, or it does not start"))) from None
    return out.stdout.strip() or None


def overrides(python: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> list[Override]:
    """What else sets pip's index on this machine."""
    return read_config(env, prefix=prefix_of(python)).overrides()


def index_url_from_files(env: Optional[Mapping[str, str]] = None,
                         platform: Optional[str] = None) -> Optional[str]:
    """The index `pip install` uses (variables and every file, as pip reads them), or None
    when that is PyPI. No subprocess: cheap enough for every report."""
    url, source = read_config(env, platform).install_index()
    return None if source == "PyPI" else url.split()[0]


def mirror_of_index_files(env: Optional[Mapping[str, str]] = None,
                          platform: Optional[str] = None) -> Optional[str]:
    """The registry mirror whose PyPI index pip uses (see `index_url_from_files`), or None."""
    from cnnsetup.mirror import registry

    url = index_url_from_files(env, platform)
    mirror = registry.mirror_of_pypi(url) if url else None
    return mirror.name if mirror else None


# --- changing the user file --------------------------------------------------------------------

@dataclass
class PipChange:
    """What a change did: the user file's value before and now, what pip install will really
    use, and what overrides the user file."""

    previous: Optional[str]
    current: Optional[str]
    changed: bool
    user_file: Optional[str] = None
    overrides: list[Override] = field(default_factory=list)
    effective: str = PYPI  # the index `pip install` uses now
    effective_source: str = "PyPI"  # where that comes from: a file, a variable, or "PyPI"
    used_before: Optional[str] = None  # the index `pip install` used before the change

    @property
    def in_effect(self) -> bool:
        """Whether `pip install` now uses what the user file says (nothing overrides it)."""
        return self.effective == (self.current or PYPI)

    def to_dict(self) -> dict[str, Any]:
        return {"previous": self.previous, "current": self.current, "changed": self.changed,
                "user_file": self.user_file, "in_effect": self.in_effect,
                "effective_index_url": self.effective, "effective_source": self.effective_source,
                "used_before": self.used_before,
                "overrides": [o.to_dict() for o in self.overrides]}


def _read_user_file(path: Path) -> tuple[bool, bytes, str]:
    """(exists, bytes, text) of the user file; only a regular file is read (a FIFO or a
    device is refused without blocking, see `journal.read_regular`)."""
    from cnnsetup.mirror import journal

    raw = journal.read_regular(path)
    if raw is None:
        return False, b"", ""
    text = _decode(raw, path)
    try:
        parse_values(text)
    except configparser.Error as error:
        raise PipConfigError(_("{path} is not a valid pip configuration file, so pip itself "
                               "refuses it: {reason}").format(
            path=path, reason=str(error).splitlines()[0])) from None
    return True, raw, text


def get_index_url(python: Optional[str] = None,
                  env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The user file's `global.index-url`, or None when it sets none."""
    return read_config(env, prefix=prefix_of(python)).user_value()


def _encoding_of(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return locale.getpreferredencoding(False) or "utf-8"


def _write_user_file(path: Path, new_text: Optional[str], old_raw: bytes) -> None:
    """Write (or, for None, remove) the user file, in the original's encoding."""
    from cnnsetup.mirror import condarc_file

    if new_text is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    ensure_dir(path.parent)  # run as root in a user's home, new folders stay the user's
    condarc_file.write_atomic(path, new_text.encode(_encoding_of(old_raw)))


def _edit(path: Path, url: Optional[str]) -> tuple[Optional[str], bool]:
    """Set (or, for None, remove) `[global] index-url` in the user file as text.
    Returns (the value before, whether the file changed)."""
    exists, raw, text = _read_user_file(path)
    before = parse_values(text) if exists else {}
    previous = before.get(KEY)
    if previous == url or (url is None and previous is None):
        return previous, False
    if url is None:
        new_text = ini_edit.remove_option(text, SECTION, _is_index_option)
    else:
        new_text = ini_edit.set_option(text, SECTION, OPTION, url, _is_index_option)
    expected = dict(before)
    if url is None:
        expected.pop(KEY, None)
    else:
        expected[KEY] = url
    try:
        after = parse_values(new_text)
    except configparser.Error:
        after = None
    if after != expected:
        raise PipConfigError(_("cnnsetup could not change only {key} in {path} (the file has a "
                               "layout it does not know), so it changed nothing. Set it by hand: "
                               "{command}").format(key=KEY, path=path, command=f"index-url = {url}"))
    if url is None and ini_edit.only_empty_sections(new_text):
        new_text = None  # nothing but an empty [global] left: an empty file means nothing
    _write_user_file(path, new_text, raw)
    return previous, True


def _change(url: Optional[str], python: Optional[str],
            env: Optional[Mapping[str, str]]) -> PipChange:
    path = user_file(env)
    prefix = prefix_of(python)
    used_before = read_config(env, prefix=prefix).install_index()[0]
    previous, changed = _edit(path, url)
    change = _result(path, previous, changed, python, env)
    change.used_before = used_before
    return change


def _result(path: Path, previous: Optional[str], changed: bool, python: Optional[str],
            env: Optional[Mapping[str, str]]) -> PipChange:
    """The change as pip will see it: the user file's value (read from the file itself, even
    when PIP_CONFIG_FILE makes pip skip it) against what `pip install` will use."""
    exists, _raw, text = _read_user_file(path)
    current = parse_values(text).get(KEY) if exists else None
    config = read_config(env, prefix=prefix_of(python))
    effective, source = config.install_index()
    return PipChange(previous, current, changed, str(path), config.overrides(), effective, source)


def set_index_url(url: str, python: Optional[str] = None,
                  env: Optional[Mapping[str, str]] = None) -> PipChange:
    """Point the user file's `[global] index-url` at `url`, every other byte kept."""
    return _change(url, python, env)


def unset_index_url(python: Optional[str] = None,
                    env: Optional[Mapping[str, str]] = None) -> PipChange:
    """Remove the user file's `[global] index-url` (pip then uses PyPI or another file's value)."""
    return _change(None, python, env)


def planned_change(url: Optional[str], env: Optional[Mapping[str, str]] = None) -> str:
    """What `point_at` would do, in words (for --dry-run)."""
    path = user_file(env)
    if url is None:
        return _("Would remove {key} from {path}.").format(key=f"[{SECTION}] {OPTION}", path=path)
    return _("Would set {setting} in {path}, keeping the rest of the file.").format(
        setting=f"[{SECTION}] {OPTION} = {url}", path=path)


# --- the backup of the user file ---------------------------------------------------------------

def record_path(condarc: Path) -> Path:
    """Where pip's backup record lives: beside the .condarc backup."""
    return condarc.with_name(condarc.name + RECORD_SUFFIX)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_record(condarc: Path) -> Optional[dict]:
    """The pip backup record, or None when cnnsetup never changed pip's file."""
    path = record_path(condarc)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise FileSafetyError(_("The backup record {path} cannot be read: {reason}").format(
            path=path, reason=error)) from None
    if not isinstance(record, dict):
        raise FileSafetyError(_("The backup record {path} cannot be read: {reason}").format(
            path=path, reason=_("it is not a cnnsetup record")))
    return record


def _save_record(condarc: Path, record: dict) -> None:
    from cnnsetup.mirror import journal

    path = record_path(condarc)
    # Never through a link: a link planted at the record's name is refused, not followed.
    journal.write_atomic(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"),
                         follow=False, mode=0o600, owner=journal.owner_for(path))


def _drop_record(condarc: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path(condarc).unlink()


def point_at(mirror: Any, condarc: Path, python: Optional[str] = None,
             env: Optional[Mapping[str, str]] = None) -> PipChange:
    """Point pip's user index-url at `mirror` (remove it for `official`). Before cnnsetup's
    first change the user file's exact bytes are kept in the record beside the .condarc
    backup, so `restore_backup` can put back exactly what was there, comments included."""
    path = user_file(env)
    record = load_record(condarc)
    if record is None:
        exists, raw, _text = _read_user_file(path)
        record = {
            "format": 2,
            "path": str(path),
            "existed": exists,
            "original_b64": base64.b64encode(raw).decode("ascii") if exists else None,
            "original_sha256": _sha256(raw) if exists else None,
            "written_sha256": [],
            # Folders the write will create (~/.config/pip on a fresh account): a restore that
            # removes the file removes them too, when they are still empty.
            "missing_dirs": [] if exists else [str(d) for d in _missing_parents(path)],
            "created": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        }
        # The record is on disk before the file changes: a crash after this point still
        # leaves the original's bytes where `restore_backup` finds them.
        _save_record(condarc, record)
    change = unset_index_url(python, env) if mirror.is_official else \
        set_index_url(mirror.pypi, python, env)
    if change.changed and record.get("format") == 2:
        exists, raw, _text = _read_user_file(path)
        written = _sha256(raw) if exists else None
        record["written_sha256"] = [*record.get("written_sha256", []), written][-2:]
        _save_record(condarc, record)
    return change


@dataclass
class PipRestore:
    """What `restore_backup` did."""

    path: str
    removed: bool  # cnnsetup had created the file, so it is gone again
    kept_aside: Optional[str]  # the edited file, kept when --force was given
    change: PipChange
    removed_dirs: list[str] = field(default_factory=list)  # folders cnnsetup had created for it

    def to_dict(self) -> dict[str, Any]:
        return {"restored": True, "path": self.path, "removed": self.removed,
                "removed_dirs": self.removed_dirs, "kept_aside": self.kept_aside,
                "index_url": self.change.current, "in_effect": self.change.in_effect,
                "effective_index_url": self.change.effective}


def restore_backup(condarc: Path, force: bool = False,
                   env: Optional[Mapping[str, str]] = None) -> Optional[PipRestore]:
    """Put pip's user file back as it was before cnnsetup's first change (exact bytes, or no
    file), then drop the record. None when there is no record. Refuses (FileSafetyError) when
    the file was edited after cnnsetup last wrote it, unless `force`, which keeps the edited
    file aside as `<file>.cnnsetup-edited-<time>`."""
    record = load_record(condarc)
    if record is None:
        return None
    if record.get("format") != 2:  # written by an older cnnsetup: only the value was kept
        previous = record.get("previous")
        change = set_index_url(previous, env=env) if previous else unset_index_url(env=env)
        _drop_record(condarc)
        return PipRestore(change.user_file or "", False, None, change)
    path = Path(record["path"])
    from cnnsetup.mirror import journal

    raw = journal.read_regular(path)  # any bytes: a file pip cannot parse is still compared
    exists, raw = raw is not None, raw or b""
    current = _sha256(raw) if exists else None
    original = base64.b64decode(record["original_b64"]) if record.get("existed") else None
    known = [*record.get("written_sha256", []), record.get("original_sha256")]
    kept_aside = None
    if current not in known:
        if not force:
            raise FileSafetyError(_(
                "{path} was edited after cnnsetup changed it; restoring would lose those edits. "
                "To restore anyway and keep the edited file aside: {command}").format(
                path=path, command="cnnsetup mirror restore --pip --force"))
        # A new name each time (as for .condarc): an earlier kept-aside file is never replaced.
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = journal.free_name(path.with_name(f"{path.name}.cnnsetup-edited-{stamp}"))
        journal.write_atomic(aside, raw, follow=False, mode=journal.mode_of(path),
                             owner=journal.owner_for(path))
        kept_aside = str(aside)
    removed_dirs = []
    if original is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        parents = set(path.parents)  # a record edited by hand never points elsewhere
        removed_dirs = _remove_empty([d for d in record.get("missing_dirs") or []
                                      if isinstance(d, str) and Path(d) in parents])
    elif raw != original or not exists:
        ensure_dir(path.parent)
        from cnnsetup.mirror import condarc_file

        condarc_file.write_atomic(path, original)
    _drop_record(condarc)
    change = _result(path, None, True, None, env)
    return PipRestore(str(path), original is None, kept_aside, change, removed_dirs)


def _missing_parents(path: Path) -> list[Path]:
    """The folders above `path` that do not exist yet, outermost first."""
    missing = []
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            break
        missing.append(parent)
    return missing[::-1]


def _remove_empty(folders: list[str]) -> list[str]:
    """Remove each of `folders` (outermost first, as recorded) that is an empty folder, the
    innermost first; stops at the first that is not empty or not a folder. The removed ones."""
    removed = []
    for folder in reversed(folders):
        path = Path(folder)
        if path.is_symlink() or not path.is_dir():
            break
        try:
            path.rmdir()  # fails on a folder that holds anything
        except OSError:
            break
        removed.append(str(path))
    return removed


def restore(previous: Optional[str], python: Optional[str] = None,
            env: Optional[Mapping[str, str]] = None) -> PipChange:
    """Set the user file's index-url back to `previous` (remove it for None), as text."""
    if previous is None:
        return unset_index_url(python, env)
    return set_index_url(previous, python, env)

"""pip's `global.index-url`, changed only through pip's own writer (`pip config --user`).

The previous value is read first and returned, so the caller can keep it in its backup and
`restore(previous)` can put back exactly what was there (or nothing). pip reads more than the
user file: PIP_INDEX_URL, PIP_CONFIG_FILE, the environment's (site) file and any file's
`[install]` section win over it, so `overrides()` says when the user file is not what pip uses.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from cnnsetup.errors import CnnsetupError
from cnnsetup.i18n import _
from cnnsetup.run import RunResult, run

KEY = "global.index-url"
PIP_TIMEOUT_S = 60.0
# Keys that decide `pip install`'s index: [install] beats [global] whatever file it is in.
INDEX_KEYS = ("global.index-url", "install.index-url", "download.index-url")


class PipConfigError(CnnsetupError):
    """pip is missing for this Python, or `pip config` refused the change."""


@dataclass(frozen=True)
class Override:
    """Something that makes pip use another index than the user file's `global.index-url`."""

    kind: str  # "env_var" | "env_file" | "site" | "global" | "user_file_ignored" | "section"
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
class PipChange:
    """What a set/unset/restore did: the value before (for the backup), the value now, and
    what overrides the user file."""

    previous: Optional[str]
    current: Optional[str]
    changed: bool
    user_file: Optional[str] = None
    overrides: list[Override] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"previous": self.previous, "current": self.current, "changed": self.changed,
                "user_file": self.user_file, "overrides": [o.to_dict() for o in self.overrides]}


def pip_command(python: Optional[str] = None) -> list[str]:
    """`<python> -m pip`: the pip of the Python that will install the packages."""
    return [python or sys.executable, "-m", "pip"]


def _pip(args: Sequence[str], python: Optional[str], env: Optional[Mapping[str, str]]) -> RunResult:
    merged = dict(os.environ if env is None else env)
    merged.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    merged.setdefault("PYTHONIOENCODING", "utf-8")
    return run([*pip_command(python), *args], timeout=PIP_TIMEOUT_S, env=merged)


def _fail(result: RunResult, what: str) -> PipConfigError:
    if result.not_found or (result.returncode is None and not result.timed_out):
        return PipConfigError(_("Could not run {command}: {error}").format(
            command=" ".join(result.args[:3]), error=result.error or ""))
    if result.timed_out:
        return PipConfigError(_("{command} did not finish within {seconds:g} seconds.").format(
            command=what, seconds=PIP_TIMEOUT_S))
    detail = (result.stderr or result.stdout).strip()
    if "No module named pip" in detail:
        return PipConfigError(_("This Python has no pip ({python}).").format(python=result.args[0]))
    return PipConfigError(_("{command} failed: {error}").format(command=what, error=detail))


def get_index_url(python: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The user file's `global.index-url`, or None when it sets none."""
    result = _pip(["config", "--user", "get", KEY], python, env)
    if result.ok:
        return result.stdout.strip() or None
    if result.returncode == 1 and "No such key" in result.stderr:
        return None
    raise _fail(result, f"pip config --user get {KEY}")


def _set(url: str, python: Optional[str], env: Optional[Mapping[str, str]]) -> None:
    result = _pip(["config", "--user", "set", KEY, url], python, env)
    if not result.ok:
        raise _fail(result, f"pip config --user set {KEY}")


def _unset(python: Optional[str], env: Optional[Mapping[str, str]]) -> None:
    result = _pip(["config", "--user", "unset", KEY], python, env)
    if not result.ok and not (result.returncode == 1 and "No such key" in result.stderr):
        raise _fail(result, f"pip config --user unset {KEY}")


def _finish(previous: Optional[str], python: Optional[str], env: Optional[Mapping[str, str]]) -> PipChange:
    """Re-read what pip now has (one `pip config debug` tells both the value and the overrides)."""
    debug = config_debug(python, env)
    current = debug.user_value() if debug.files else get_index_url(python, env)
    return PipChange(previous, current, previous != current, debug.user_file,
                     overrides_from(debug, env))


def set_index_url(url: str, python: Optional[str] = None,
                  env: Optional[Mapping[str, str]] = None) -> PipChange:
    """Point the user file's `global.index-url` at `url`; `previous` is what to keep in the backup."""
    previous = get_index_url(python, env)
    if previous != url:
        _set(url, python, env)
    return _finish(previous, python, env)


def unset_index_url(python: Optional[str] = None,
                    env: Optional[Mapping[str, str]] = None) -> PipChange:
    """Remove the user file's `global.index-url` (pip then uses PyPI or another file's value)."""
    previous = get_index_url(python, env)
    if previous is not None:
        _unset(python, env)
    return _finish(previous, python, env)


def restore(previous: Optional[str], python: Optional[str] = None,
            env: Optional[Mapping[str, str]] = None) -> PipChange:
    """Put back exactly the value kept in the backup: set it again, or unset when there was none."""
    if previous is None:
        change = unset_index_url(python, env)
        _remove_if_empty(change.user_file)
        return change
    return set_index_url(previous, python, env)


def _remove_if_empty(path: Optional[str]) -> None:
    """`pip config unset` leaves an empty file behind; an empty pip.conf means nothing, and
    the user had none when they had no index-url of their own."""
    if not path:
        return
    try:
        if Path(path).is_file() and not Path(path).read_text(encoding="utf-8").strip():
            Path(path).unlink()
    except OSError:
        pass


@dataclass
class ConfigFileEntry:
    variant: str  # "env" | "global" | "site" | "user"
    path: str
    exists: bool
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class DebugInfo:
    """`pip config debug`, parsed: every file pip considers, in its order, with its values."""

    files: list[ConfigFileEntry] = field(default_factory=list)
    env_vars: dict[str, str] = field(default_factory=dict)

    @property
    def user_file(self) -> Optional[str]:
        """The user file `pip config --user set` writes: the last user entry (the new location)."""
        users = [f for f in self.files if f.variant == "user"]
        return users[-1].path if users else None

    def user_value(self, key: str = KEY) -> Optional[str]:
        """`key` as the user files set it (the later file wins), or None."""
        value = None
        for entry in self.files:
            if entry.variant == "user" and entry.exists and key in entry.values:
                value = entry.values[key]
        return value


def parse_config_debug(text: str) -> DebugInfo:
    """Parse the text of `pip config debug` (sections env_var, env, global, site, user)."""
    info = DebugInfo()
    section = ""
    current: Optional[ConfigFileEntry] = None
    for line in text.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        stripped = line.strip()
        if indent == 0 and stripped.endswith(":"):
            section, current = stripped[:-1], None
        elif indent == 2 and section == "env_var" and "=" in stripped:
            name, _sep, value = stripped.partition("=")
            info.env_vars[name] = value.strip().strip("'\"")
        elif indent == 2 and ", exists: " in stripped:
            path, _sep, exists = stripped.rpartition(", exists: ")
            current = ConfigFileEntry(section, path, exists.strip() == "True")
            info.files.append(current)
        elif indent >= 4 and current is not None and ": " in stripped:
            key, _sep, value = stripped.partition(": ")
            current.values[key.strip()] = value.strip()
    return info


def config_debug(python: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> DebugInfo:
    """Run and parse `pip config debug` (an empty result when pip cannot say)."""
    result = _pip(["config", "debug"], python, env)
    return parse_config_debug(result.stdout) if result.ok else DebugInfo()


def overrides_from(debug: DebugInfo, env: Optional[Mapping[str, str]] = None) -> list[Override]:
    """Everything besides the user file's `global.index-url` that decides pip's index."""
    env = os.environ if env is None else env
    found: list[Override] = []
    if env.get("PIP_INDEX_URL"):
        found.append(Override("env_var", "PIP_INDEX_URL", "index-url", env["PIP_INDEX_URL"], True))
    config_file = env.get("PIP_CONFIG_FILE")
    if config_file and os.path.exists(config_file):
        found.append(Override("user_file_ignored", config_file, "", "", True))
    user_file = debug.user_file
    for entry in debug.files:
        if not entry.exists:
            continue
        for key in INDEX_KEYS:
            value = entry.values.get(key)
            if value is None:
                continue
            is_user_file = entry.variant == "user" and entry.path == user_file
            if is_user_file and key == KEY:
                continue
            # pip's file order is global < user < site < env; an [install] / [download] section
            # beats [global] from any file.
            wins = key != KEY or entry.variant in ("site", "env")
            kind = {"env": "env_file"}.get(entry.variant, entry.variant)
            found.append(Override("section" if key != KEY else kind, entry.path, key, value, wins))
    return found


def overrides(python: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> list[Override]:
    """What else sets pip's index on this machine (runs `pip config debug`)."""
    return overrides_from(config_debug(python, env), env)


def index_url_from_files(env: Optional[Mapping[str, str]] = None,
                         platform: Optional[str] = None) -> Optional[str]:
    """pip's index as its environment variable and user files set it, read without starting
    pip (cheap enough for every report): PIP_INDEX_URL, else PIP_CONFIG_FILE, else the user
    files, later ones winning as pip reads them. None when none sets it (PyPI)."""
    import configparser

    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if env.get("PIP_INDEX_URL"):
        return env["PIP_INDEX_URL"].split()[0]
    if env.get("PIP_CONFIG_FILE"):
        files = [Path(env["PIP_CONFIG_FILE"])]
    elif platform == "win32":
        appdata = env.get("APPDATA") or str(Path(env.get("USERPROFILE", "~")) / "AppData" / "Roaming")
        files = [Path(env.get("USERPROFILE", "~")) / "pip" / "pip.ini", Path(appdata) / "pip" / "pip.ini"]
    else:
        home = Path(env.get("HOME", "~"))
        xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        files = [home / ".pip" / "pip.conf", xdg / "pip" / "pip.conf"]
    found = None
    for path in files:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, "index-url"):
                found = parser.get(section, "index-url").strip() or found
    return found


def mirror_of_index_files(env: Optional[Mapping[str, str]] = None,
                          platform: Optional[str] = None) -> Optional[str]:
    """The registry mirror whose PyPI index pip uses (see `index_url_from_files`), or None."""
    from cnnsetup.mirror import registry

    url = index_url_from_files(env, platform)
    mirror = registry.mirror_of_pypi(url) if url else None
    return mirror.name if mirror else None


def point_at(mirror: Any, condarc: Path, python: Optional[str] = None,
             env: Optional[Mapping[str, str]] = None) -> PipChange:
    """Point pip's user index-url at `mirror` (unset it for `official`), and keep the value pip
    had before cnnsetup's first change beside the .condarc backup, for `restore --pip`."""
    from cnnsetup.mirror import condarc_file

    if mirror.is_official:
        change = unset_index_url(python, env)
    else:
        change = set_index_url(mirror.pypi, python, env)
    if change.changed:
        condarc_file.save_pip_record(condarc, change.previous)
    return change

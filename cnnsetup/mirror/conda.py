"""Every call to conda: finding it, `conda clean -i`, `conda info --json`.

One module owns them so that each call has an argument list (never a shell), a timeout, and one
of five plain outcomes: it worked, conda is not there, it timed out, it failed (with conda's own
error text), or it printed something that is not JSON.
"""

from __future__ import annotations

import json
import re
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from cnnsetup.i18n import _
from cnnsetup.run import run

CLEAN_TIMEOUT_S = 60.0
INFO_TIMEOUT_S = 30.0

# Where installers put conda, relative to the home folder and as absolute folders (installer
# conventions, not conda rules).
HOME_INSTALL_DIRS = ("miniconda3", "anaconda3", "miniforge3")
UNIX_SYSTEM_INSTALL_DIRS = ("/opt/conda", "/opt/miniconda3", "/opt/anaconda3")
WINDOWS_SYSTEM_INSTALL_DIRS = ("C:\\ProgramData\\miniconda3", "C:\\ProgramData\\anaconda3")


@dataclass
class CondaCall:
    """The outcome of one conda call. Exactly one of the states holds: ok (with `data`),
    not_found, timed_out, failed (conda's own error text in `error`), not_json."""

    ok: bool = False
    data: Any = None
    not_found: bool = False
    timed_out: bool = False
    failed: bool = False
    not_json: bool = False
    error: str = ""
    args: list[str] = field(default_factory=list)
    # conda's exception class when it reported one (`{"exception_name": ...}`), e.g.
    # "CondaToSNonInteractiveError"; "" otherwise.
    exception_name: str = ""
    returncode: Optional[int] = None
    timeout: float = 0.0
    output: str = ""  # the start of what conda printed, when it was not JSON

    @property
    def state(self) -> str:
        """One word for JSON output: ok, not_found, timed_out, failed or not_json."""
        for name in ("ok", "not_found", "timed_out", "failed", "not_json"):
            if getattr(self, name):
                return name
        return "failed"

    def describe(self) -> str:
        """One translated sentence saying what happened."""
        command = " ".join(["conda", *self.args[1:]]) if self.args else "conda"
        if self.ok:
            return _("{command} worked.").format(command=command)
        if self.not_found:
            return _("conda was not found ({error}).").format(
                error=self.error or (self.args[0] if self.args else "conda")
            )
        if self.timed_out:
            return _("{command} did not finish within {seconds:g} seconds.").format(
                command=command, seconds=self.timeout
            )
        if self.not_json:
            return _("{command} printed something that is not JSON: {output}").format(
                command=command, output=self.output
            )
        detail = _plain_error(self.error) or _("exit status {code}").format(code=self.returncode)
        if self.exception_name and self.exception_name not in detail:
            detail = f"{self.exception_name}: {detail}"
        return _("{command} failed: {error}").format(command=command, error=detail)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "args": list(self.args),
            "returncode": self.returncode,
            "error": self.error or None,
            "exception_name": self.exception_name or None,
        }


def _plain_error(error: str) -> str:
    """conda's error text, with a YAML error's raw repr (`DuplicateKeyError('while ...',
    <ruamel.yaml.error.FileMark object at 0x...>, ...)`) put in plain words."""
    if "FileMark object" not in error and "Mark object" not in error:
        return error
    duplicate = re.search(r'found duplicate key \"?(.+?)\"? with value', error)
    if duplicate:
        return _("a configuration file has the key {key} twice; `{command}` shows which file "
                 "and line").format(key=duplicate.group(1).strip('"'),
                                    command="cnnsetup mirror status")
    return _("a configuration file is not valid YAML; `{command}` shows which file and "
             "line").format(command="cnnsetup mirror status")


@dataclass(frozen=True)
class CondaLocation:
    """Where conda was found, and how: explicit, CONDA_EXE, PATH or install_folder."""

    path: str
    how: str


def _is_windows(platform: str) -> bool:
    return platform.startswith("win")


def _home(env: Mapping[str, str], platform: str) -> Optional[str]:
    if _is_windows(platform):
        return env.get("USERPROFILE") or env.get("HOME")
    return env.get("HOME")


def _runnable(path: str, platform: str) -> bool:
    if not os.path.isfile(path):
        return False
    return _is_windows(platform) or os.access(path, os.X_OK)


def _windows_exe_for(path: str) -> Optional[str]:
    """`<base>\\Scripts\\conda.exe` for a `conda.bat` / `conda.cmd` found in `<base>\\condabin`;
    batch files need cmd.exe, which cnnsetup never runs."""
    folder = os.path.dirname(path)
    base = os.path.dirname(folder)
    return os.path.join(base, "Scripts", "conda.exe")


def _search_path(env: Mapping[str, str], platform: str) -> Optional[CondaLocation]:
    separator = ";" if _is_windows(platform) else ":"
    for folder in (env.get("PATH") or "").split(separator):
        folder = folder.strip().strip('"')
        if not folder:
            continue
        if not _is_windows(platform):
            candidate = os.path.join(folder, "conda")
            if _runnable(candidate, platform):
                return CondaLocation(candidate, "PATH")
            continue
        # Windows: the first PATH folder holding conda decides; the .exe beside a condabin
        # batch file is what we run.
        for name in ("conda.exe", "conda.bat", "conda.cmd"):
            candidate = os.path.join(folder, name)
            if not os.path.isfile(candidate):
                continue
            if name == "conda.exe":
                return CondaLocation(candidate, "PATH")
            exe = _windows_exe_for(candidate)
            if exe and os.path.isfile(exe):
                return CondaLocation(exe, "PATH")
    return None


def install_folders(
    env: Mapping[str, str], platform: str, system_dirs: Optional[Sequence[str]] = None
) -> list[str]:
    """The usual conda install folders on this platform, most personal first."""
    home = _home(env, platform)
    folders = [os.path.join(home, name) for name in HOME_INSTALL_DIRS] if home else []
    if system_dirs is None:
        system_dirs = WINDOWS_SYSTEM_INSTALL_DIRS if _is_windows(platform) else UNIX_SYSTEM_INSTALL_DIRS
    return folders + list(system_dirs)


def executable_in(base: str, platform: str) -> str:
    """The conda executable inside an install folder."""
    if _is_windows(platform):
        return os.path.join(base, "Scripts", "conda.exe")
    return os.path.join(base, "bin", "conda")


def locate_conda(
    explicit: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    platform: Optional[str] = None,
    system_dirs: Optional[Sequence[str]] = None,
) -> Optional[CondaLocation]:
    """Find conda: `explicit`, then CONDA_EXE, then PATH, then the usual install folders.

    An explicit path is returned as given (a wrong one then shows up as "not found" when called);
    a CONDA_EXE that points nowhere is skipped, as a stale value from an old shell often does.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if explicit:
        return CondaLocation(explicit, "explicit")
    conda_exe = (env.get("CONDA_EXE") or "").strip()
    if conda_exe:
        if _is_windows(platform) and conda_exe.lower().endswith((".bat", ".cmd")):
            conda_exe = _windows_exe_for(conda_exe) or conda_exe
        if _runnable(conda_exe, platform):
            return CondaLocation(conda_exe, "CONDA_EXE")
    found = _search_path(env, platform)
    if found:
        return found
    for base in install_folders(env, platform, system_dirs):
        candidate = executable_in(base, platform)
        if _runnable(candidate, platform):
            return CondaLocation(candidate, "install_folder")
    return None


def find_conda(
    explicit: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    platform: Optional[str] = None,
    system_dirs: Optional[Sequence[str]] = None,
) -> Optional[str]:
    """The conda executable to call, or None when this machine has none we can find."""
    location = locate_conda(explicit, env, platform, system_dirs)
    return location.path if location else None


def root_prefix_of(conda: str) -> Optional[str]:
    """The base install folder of a conda executable (`<base>/bin/conda`,
    `<base>/condabin/conda`, `<base>\\Scripts\\conda.exe`), or None when the layout is unknown."""
    folder = os.path.dirname(os.path.abspath(conda))
    if os.path.basename(folder).lower() in ("bin", "scripts", "condabin"):
        return os.path.dirname(folder)
    return None


def _error_from_json(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        return "", ""
    error = data.get("error") or data.get("message") or ""
    return str(error).strip(), str(data.get("exception_name") or "")


def call_json(
    conda: str, args: list[str], timeout: float, env: Optional[Mapping[str, str]] = None
) -> CondaCall:
    """Run `conda ARGS` (which must include --json) and parse what it prints."""
    result = run([conda, *args], timeout=timeout, env=env)
    call = CondaCall(args=result.args, returncode=result.returncode, timeout=timeout)
    if result.not_found:
        call.not_found, call.error = True, result.error or ""
        return call
    if result.timed_out:
        call.timed_out = True
        return call
    if result.returncode is None:  # could not start: permission denied, bad executable
        call.failed, call.error = True, result.error or ""
        return call
    stdout = result.stdout.strip()
    try:
        call.data = json.loads(stdout) if stdout else None
    except json.JSONDecodeError:
        if result.returncode == 0:
            call.not_json = True
            call.output = stdout[:300]
        else:
            call.failed = True
            call.error = (result.stderr.strip() or stdout)[-2000:]
        return call
    error, exception_name = _error_from_json(call.data)
    reported_failure = isinstance(call.data, dict) and call.data.get("success") is False
    if result.returncode != 0 or exception_name or reported_failure:
        call.failed = True
        call.exception_name = exception_name
        call.error = error or result.stderr.strip()[-2000:]
        return call
    if call.data is None:  # exit 0 and nothing printed: not the JSON we asked for
        call.not_json = True
        call.output = result.stderr.strip()[:300]
        return call
    call.ok = True
    return call


def clean_index_cache(
    conda: str, timeout: float = CLEAN_TIMEOUT_S, env: Optional[Mapping[str, str]] = None
) -> CondaCall:
    """`conda clean -i -y --json`: drop the cached channel index so the new mirror is read."""
    return call_json(conda, ["clean", "-i", "-y", "--json"], timeout, env)


def info(
    conda: str, timeout: float = INFO_TIMEOUT_S, env: Optional[Mapping[str, str]] = None
) -> CondaCall:
    """`conda info --json`: what conda really uses (channels, config files, version...)."""
    return call_json(conda, ["info", "--json"], timeout, env)


@dataclass
class CondaInfo:
    """The parts of `conda info --json` cnnsetup uses; missing keys read as empty."""

    conda_version: str = ""
    platform: str = ""
    channels: list[str] = field(default_factory=list)
    config_files: list[str] = field(default_factory=list)
    user_rc_path: str = ""
    sys_rc_path: str = ""
    root_prefix: str = ""
    active_prefix: Optional[str] = None
    default_prefix: str = ""
    pkgs_dirs: list[str] = field(default_factory=list)
    offline: bool = False


def parse_info(data: Any) -> CondaInfo:
    """`conda info --json` output as a CondaInfo (tolerant of older and newer conda)."""
    if not isinstance(data, dict):
        return CondaInfo()

    def strings(key: str) -> list[str]:
        value = data.get(key) or []
        return [str(v) for v in value] if isinstance(value, list) else []

    return CondaInfo(
        conda_version=str(data.get("conda_version") or ""),
        platform=str(data.get("platform") or ""),
        channels=strings("channels"),
        config_files=strings("config_files"),
        user_rc_path=str(data.get("user_rc_path") or ""),
        sys_rc_path=str(data.get("sys_rc_path") or ""),
        root_prefix=str(data.get("root_prefix") or ""),
        active_prefix=data.get("active_prefix") or None,
        default_prefix=str(data.get("default_prefix") or ""),
        pkgs_dirs=strings("pkgs_dirs"),
        offline=bool(data.get("offline")),
    )

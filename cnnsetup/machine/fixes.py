"""Fix recipes: the command to paste for each kind of finding, fitted to the machine.

Python is named by its full path, quoted for the user's shell (`cnnsetup.shell`); pip installs
use the configured pip mirror; a torch that conda installed is repaired with conda, or moved to
pip through a fresh environment, never with `pip uninstall` of a conda package.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Optional

from cnnsetup import shell as shell_module
from cnnsetup.i18n import _
from cnnsetup.machine.facts import Facts
from cnnsetup.machine.finding_kinds import KINDS, MKL_BEFORE_ITT_SPLIT, VC_REDIST_FIX, Finding
from cnnsetup.machine.torch_install import Machine, Recommendation, driver_fix, recommend
from cnnsetup.shell import PathArg


class Context:
    """What rules share: the facts, the torch recommendation, and the fix recipes."""

    def __init__(self, facts: Facts, rec: Optional[Recommendation],
                 machine: Optional[Machine]) -> None:
        self.facts = facts
        self.rec = rec
        self.machine = machine
        self.shell = getattr(facts, "shell", shell_module.POSIX)
        self.python = facts.python.executable or None
        self.index_url = getattr(facts, "pip_index_url", None)

    # -------------------------------------------------------------- building findings

    def finding(self, kind_key: str, detail: Optional[str] = None, *, status: Optional[str] = None,
                fix: Optional[str] = "", **values) -> Finding:
        """The Finding of KINDS[kind_key] with `values` in its summary; `fix` "" means the
        kind's recipe, None none, any other text that text."""
        kind = KINDS[kind_key]
        summary = _(kind.summary).format(**values) if kind.summary != "{text}" else values["text"]
        if fix == "":
            fix = self.fix(kind.fix, values) if kind.fix else None
        return Finding(kind.id, status or kind.status, summary, fix, detail)

    # -------------------------------------------------------------- fix recipes

    def fix(self, recipe: str, values: dict) -> Optional[str]:
        """The command for `recipe` (KINDS' fix names) on this machine."""
        return getattr(self, "_fix_" + recipe)(values)

    def pip(self, *args: str, python: Optional[str] = None) -> str:
        """`"<python>" -m pip ARGS`."""
        return shell_module.python_command(python or self.python, ["-m", "pip", *args], self.shell)

    def pip_install(self, *packages: str, python: Optional[str] = None) -> str:
        """`"<python>" -m pip install PACKAGES`, from the configured pip mirror when there is one."""
        return shell_module.pip_install(python or self.python, packages, self.shell,
                                        index_url=self.index_url)

    @property
    def conda_torch(self) -> bool:
        """torch in this environment was installed by conda (a conda-meta record of pytorch)."""
        torch = self.facts.torch
        records = [r for r in self.facts.python.conda_records if r.startswith("pytorch-")
                   or r.startswith("pytorch-cpu-") or r.startswith("pytorch-gpu-")]
        return bool(torch.conda_pytorch or records or "conda" in torch.installers)

    def conda_program(self) -> str:
        conda = self.facts.conda.path
        return shell_module.program(conda, self.shell) if conda else "conda"

    def conda(self, *args: str) -> str:
        """`"<conda>" ARGS` (conda by its full path when known)."""
        return " ".join([self.conda_program(), *(shell_module.quote(a, self.shell) for a in args)])

    def _fix_install_torch(self, values: dict) -> Optional[str]:
        if self.conda_torch and self.facts.torch.installed:
            return self._fix_fresh_env(values)
        return self.rec.command if self.rec else None

    def _fix_install_torch_if_missing(self, values: dict) -> Optional[str]:
        return self.rec.command if self.rec and not self.facts.torch.installed else None

    def _fix_reinstall_torch(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            prefix = self.facts.python.prefix
            return self.conda("install", "-p", PathArg(prefix), "-y", "--force-reinstall", "pytorch")
        lines = [self.pip("uninstall", "-y", "torch"), *(self.rec.commands if self.rec else [])]
        return "\n".join(_unique(lines))

    def _fix_reinstall_no_cache(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            return self._fix_reinstall_torch(values)
        lines = [self.pip("uninstall", "-y", "torch")]
        if self.rec and self.rec.argvs:
            lines += [shell_module.python_command(self.python, [*a[1:], "--no-cache-dir"], self.shell)
                      for a in self.rec.argvs if "uninstall" not in a]
        return "\n".join(_unique(lines))

    def _fix_vc_redist(self, values: dict) -> Optional[str]:
        return VC_REDIST_FIX

    def _fix_ensurepip(self, values: dict) -> Optional[str]:
        return shell_module.python_command(self.python, ["-m", "ensurepip", "--upgrade"], self.shell)

    def _fix_numpy_pin(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            return self.conda("install", "-p", PathArg(self.facts.python.prefix), "-y", "numpy<2")
        return self.pip_install("numpy<2")

    def _fix_numpy_install(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            return self.conda("install", "-p", PathArg(self.facts.python.prefix), "-y", "numpy")
        return self.pip_install("numpy")

    def _fix_mkl(self, values: dict) -> Optional[str]:
        if self.conda_torch:
            return self.conda("install", "-p", PathArg(self.facts.python.prefix), "-y", MKL_BEFORE_ITT_SPLIT)
        return self._fix_fresh_env(values)

    def _fix_clean(self, values: dict) -> Optional[str]:
        if self.facts.conda.found:
            return self.conda("clean", "--all", "-y")
        return self.pip("cache", "purge")

    def _fix_driver(self, values: dict) -> Optional[str]:
        return driver_fix(self.machine)[1] if self.machine else None

    def fresh_env(self) -> tuple[list[str], Optional[str]]:
        """Commands that make a new environment holding pip's torch only, and its Python."""
        facts = self.facts
        name = kernel_name(facts.python.env_name or "torch") + "-pip"
        version = ".".join((facts.python.version or "3.12").split(".")[:2])
        windows = facts.platform == "win32"
        if facts.conda.found and facts.conda.base:
            base = facts.conda.base
            python = _join(windows, base, "envs", name, "python.exe" if windows else "bin/python")
            lines = [self.conda("create", "-y", "-n", name, f"python={version}")]
        else:
            home = facts.system.home or "~"
            folder = _join(windows, home, name)
            python = _join(windows, folder, "Scripts\\python.exe" if windows else "bin/python")
            lines = [shell_module.python_command(self.python, ["-m", "venv", PathArg(folder)],
                                                 self.shell)]
        return lines, python

    def _fix_fresh_env(self, values: dict) -> Optional[str]:
        lines, python = self.fresh_env()
        if self.machine is None:
            return "\n".join(lines)
        fresh = replace(self.machine, python_path=python, installed_torch=None)
        try:
            rec = recommend(fresh, mirror=getattr(self.facts, "pip_mirror", None))
        except Exception:  # a fact the tables cannot place: the environment alone
            return "\n".join(lines)
        return "\n".join(lines + rec.commands)

    def kernel_install(self, python: Optional[str] = None) -> str:
        """Install a Jupyter kernel for `python`'s environment (this Python by default)."""
        python = python or self.python
        name = kernel_name(self.facts.python.env_name or "torch")
        lines = []
        if not self.facts.python.ipykernel:
            lines.append(self.pip_install("ipykernel", python=python))
        lines.append(shell_module.python_command(python, [
            "-m", "ipykernel", "install", "--user", "--name", name,
            "--display-name", f"{name} (cnnsetup)"], self.shell))
        return "\n".join(lines)

    def _fix_kernel_install(self, values: dict) -> Optional[str]:
        if self.facts.torch.importable:
            return self.kernel_install()
        return None

    def _fix_kernel_replace(self, values: dict) -> Optional[str]:
        removals = [shell_module.remove_folder(d, self.shell) for d in values.get("spec_dirs", [])]
        install = self._fix_kernel_install(values)
        return "\n".join(removals + ([install] if install else []))


def kernel_name(env_name: str) -> str:
    """A kernelspec name (letters, digits, `.`, `_`, `-`) for an environment name."""
    name = re.sub(r"[^a-z0-9._-]+", "-", env_name.lower()).strip("-")
    return name or "torch"


def _join(windows: bool, *parts: str) -> str:
    sep = "\\" if windows else "/"
    out = parts[0]
    for part in parts[1:]:
        out = out.rstrip("/\\") + sep + part
    return out



def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen

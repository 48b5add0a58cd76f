"""Jupyter kernels as facts: which kernelspecs Jupyter would list, and what each one's Python has.

A notebook runs in its kernel's interpreter, not in the `python` of the shell: "No module named
'torch'" in a notebook usually means the kernel is another environment's Python. This module
finds the kernelspecs the way `jupyter kernelspec list` does and asks each Python kernel's
interpreter, in parallel and with a time limit, for its version and its torch.

Where Jupyter looks (jupyter_core.paths.jupyter_path / jupyter_data_dir, jupyter_core 5):
every entry of JUPYTER_PATH first; then the user data folder (JUPYTER_DATA_DIR, else
`~/.local/share/jupyter` or `$XDG_DATA_HOME/jupyter` on Linux, `~/Library/Jupyter` on macOS,
`%APPDATA%\\jupyter` on Windows) and the environment folders (`{prefix}/share/jupyter`),
the environment ones first when JUPYTER_PREFER_ENV_PATH is true; then the system folders
(`/usr/local/share/jupyter`, `/usr/share/jupyter`; `%PROGRAMDATA%\\jupyter` on Windows). Each
holds `kernels/<name>/kernel.json`; the first folder with a name wins. cnnsetup does not know
which Jupyter the student starts, so the environment folders are those of every candidate:
this Python, conda's base, and each `jupyter` on PATH.

A kernel.json whose argv[0] is plain `python` (ipykernel's own spec) runs the Jupyter server's
interpreter (jupyter_client replaces it with sys.executable): for a spec in an environment
folder, that environment's Python.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

KERNEL_TIMEOUT_S = 30.0
_TRUE = ("1", "true", "yes", "on", "y")

# Run by each kernel's interpreter: Python 2.7 and 3.x, standard library only, one JSON line.
PROBE = r"""
import json, sys
out = {"python": "%d.%d.%d" % tuple(sys.version_info[:3]), "executable": sys.executable,
       "prefix": sys.prefix, "torch": None, "torch_cuda": None, "torch_error": None,
       "ipykernel": False}
try:
    import importlib.util as u
    out["ipykernel"] = u.find_spec("ipykernel") is not None
except Exception:
    pass
known = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
try:
    import importlib.util as u, os
    spec = u.find_spec("torch")
    where = os.path.dirname(spec.origin) if spec is not None and spec.origin else None
    if where and known.get("python") == out["python"] and \
            os.path.normcase(where) == os.path.normcase(known.get("torch_dir") or ""):
        out["same_torch"] = where
except Exception:
    pass
if not out.get("same_torch"):
    try:
        import torch
        out["torch"] = str(torch.__version__)
        out["torch_cuda"] = getattr(getattr(torch, "version", None), "cuda", None)
    except BaseException as e:
        out["torch_error"] = ("%s: %s" % (type(e).__name__, e)).strip()
sys.stdout.write("\n@@cnnsetup@@" + json.dumps(out) + "\n")
"""
_MARK = "@@cnnsetup@@"


@dataclass
class Kernel:
    """One kernelspec and, for a Python kernel, what its interpreter has."""

    name: str
    display_name: str
    language: str
    spec_dir: str
    argv: list[str] = field(default_factory=list)
    env: dict = field(default_factory=dict)  # kernel.json's "env": set for the kernel process
    interpreter: Optional[str] = None  # full path of the kernel's Python; None when unknown
    interpreter_exists: Optional[bool] = None
    python: Optional[str] = None  # "3.11.9"
    prefix: Optional[str] = None
    torch: Optional[str] = None  # torch.__version__, None when it does not import
    torch_cuda: Optional[str] = None
    torch_error: Optional[str] = None  # the import's last line: "ModuleNotFoundError: ..."
    ipykernel: Optional[bool] = None
    probe_error: Optional[str] = None  # the interpreter did not answer (timeout, crash)
    # The kernel's torch is the very install the torch worker imports, under the same Python
    # version: it was not imported twice, and the worker's answer stands for it.
    same_torch: Optional[str] = None

    @property
    def is_python(self) -> bool:
        """A Python kernel (ipykernel); other languages are listed but not probed."""
        return self.language.lower() == "python" or any("ipykernel" in a for a in self.argv)

    def to_json(self) -> dict:
        """The `jupyter_kernels` entry of `info --json`."""
        return {"name": self.name, "display_name": self.display_name, "language": self.language,
                "spec_dir": self.spec_dir, "interpreter": self.interpreter,
                "interpreter_exists": self.interpreter_exists, "python": self.python,
                "torch": self.torch, "torch_cuda": self.torch_cuda,
                "torch_error": self.torch_error, "probe_error": self.probe_error}


def _env_true(env: Mapping[str, str], name: str) -> Optional[bool]:
    if name not in env:
        return None
    return env[name].strip().lower() in _TRUE


def user_data_dir(platform: str, env: Mapping[str, str]) -> str:
    """jupyter_core's jupyter_data_dir() for `platform`."""
    if env.get("JUPYTER_DATA_DIR"):
        return env["JUPYTER_DATA_DIR"]
    if platform == "win32":
        home = env.get("USERPROFILE") or str(Path("~").expanduser())
        appdata = env.get("APPDATA")
        return _join(platform, appdata, "jupyter") if appdata else _join(
            platform, home, ".jupyter", "data")
    home = env.get("HOME") or str(Path("~").expanduser())
    if platform == "darwin":
        return _join(platform, home, "Library", "Jupyter")
    return _join(platform, env.get("XDG_DATA_HOME") or _join(platform, home, ".local", "share"),
                 "jupyter")


def system_data_dirs(platform: str, env: Mapping[str, str]) -> list[str]:
    """jupyter_core's SYSTEM_JUPYTER_PATH."""
    if platform == "win32":
        return [_join(platform, env["PROGRAMDATA"], "jupyter")] if env.get("PROGRAMDATA") else []
    return ["/usr/local/share/jupyter", "/usr/share/jupyter"]


def data_dirs(platform: str, env: Mapping[str, str], prefixes: Sequence[str],
              prefer_env: bool = False) -> list[tuple[str, Optional[str]]]:
    """Jupyter's data search path, highest priority first, as (folder, environment prefix or
    None). `prefixes` are the environments whose `share/jupyter` Jupyter may read."""
    sep = ";" if platform == "win32" else ":"
    out: list[tuple[str, Optional[str]]] = []
    for part in (env.get("JUPYTER_PATH") or "").split(sep):
        if part:
            out.append((part.rstrip("/\\"), None))
    user = [(user_data_dir(platform, env), None)]
    system = system_data_dirs(platform, env)
    envs = [(_join(platform, p, "share", "jupyter"), p) for p in prefixes]
    envs = [e for e in envs if e[0] not in system]
    preferred = _env_true(env, "JUPYTER_PREFER_ENV_PATH")
    if preferred if preferred is not None else prefer_env:
        out += envs + user
    else:
        out += user + envs
    out += [(s, None) for s in system]
    seen: set[str] = set()
    unique = []
    for folder, prefix in out:
        key = folder.lower() if platform == "win32" else folder
        if key not in seen:
            seen.add(key)
            unique.append((folder, prefix))
    return unique


def find_kernels(folders: Sequence[tuple[str, Optional[str]]], platform: str = sys.platform,
                 default_python: Optional[str] = None) -> list[Kernel]:
    """Every kernelspec in `folders` (first one with a name wins), as Jupyter lists them."""
    kernels: dict[str, Kernel] = {}
    for folder, prefix in folders:
        kernels_dir = Path(folder) / "kernels"
        try:
            entries = sorted(kernels_dir.iterdir())
        except OSError:
            continue
        for entry in entries:
            spec_file = entry / "kernel.json"
            name = entry.name.lower()
            if name in kernels or not spec_file.is_file():
                continue
            try:
                spec = json.loads(spec_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(spec, dict):
                continue
            argv = [str(a) for a in spec.get("argv") or []]
            spec_env = spec.get("env") if isinstance(spec.get("env"), dict) else {}
            kernel = Kernel(name=name, display_name=str(spec.get("display_name") or name),
                            language=str(spec.get("language") or ""), spec_dir=str(entry),
                            argv=argv, env={str(k): str(v) for k, v in spec_env.items()})
            if kernel.is_python and argv:
                kernel.interpreter = _interpreter(argv[0], prefix, platform, default_python)
                kernel.interpreter_exists = bool(kernel.interpreter) and os.path.isfile(
                    kernel.interpreter)
            kernels[name] = kernel
    return list(kernels.values())


def _interpreter(first: str, prefix: Optional[str], platform: str,
                 default_python: Optional[str]) -> Optional[str]:
    if re.fullmatch(r"python(3(\.[0-9]+)?)?", first):
        # jupyter_client runs its own interpreter for a plain `python`.
        if prefix:
            return python_in(prefix, platform)
        return default_python
    if os.path.isabs(first) or (platform == "win32" and len(first) > 2 and first[1] == ":"):
        return first
    return shutil.which(first) or first


def python_in(prefix: str, platform: str) -> str:
    """The interpreter of an environment at `prefix`."""
    if platform == "win32":
        return _join(platform, prefix, "python.exe")
    return _join(platform, prefix, "bin", "python")


def probe(kernels: Sequence[Kernel], *, timeout: float = KERNEL_TIMEOUT_S,
          env: Optional[Mapping[str, str]] = None,
          known_torch: Optional[Mapping[str, str]] = None) -> list[Kernel]:
    """Ask each Python kernel's interpreter (with its kernel.json "env") for its version and
    torch, all at once, each interpreter once. `known_torch` ({"python": "3.12.3", "torch_dir":
    folder}) names a torch install being imported elsewhere: a kernel that finds the same one
    under the same Python version says so (`same_torch`) instead of importing it again."""
    argument = json.dumps(dict(known_torch or {}))
    env = dict(os.environ if env is None else env)
    env.pop("PYTHONSTARTUP", None)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    todo: dict[tuple, tuple[str, dict]] = {}
    for kernel in kernels:
        if kernel.is_python and kernel.interpreter and kernel.interpreter_exists:
            todo.setdefault(_key(kernel), (kernel.interpreter, {**env, **kernel.env}))
    answers: dict[tuple, dict] = {}
    if todo:
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            futures = {key: pool.submit(_ask, path, timeout, full_env, argument)
                       for key, (path, full_env) in todo.items()}
            for key, future in futures.items():
                answers[key] = future.result()
    for kernel in kernels:
        if not (kernel.is_python and kernel.interpreter and kernel.interpreter_exists):
            continue
        answer = answers.get(_key(kernel), {})
        kernel.probe_error = answer.get("probe_error")
        kernel.python = answer.get("python")
        kernel.prefix = answer.get("prefix")
        kernel.torch = answer.get("torch")
        kernel.torch_cuda = answer.get("torch_cuda")
        kernel.torch_error = answer.get("torch_error")
        kernel.ipykernel = answer.get("ipykernel")
        kernel.same_torch = answer.get("same_torch")
    return list(kernels)


def _key(kernel: Kernel) -> tuple:
    assert kernel.interpreter is not None
    return _real(kernel.interpreter), tuple(sorted(kernel.env.items()))


def _ask(python: str, timeout: float, env: Mapping[str, str], argument: str = "{}") -> dict:
    try:
        done = subprocess.run([python, "-c", PROBE, argument], capture_output=True, timeout=timeout,
                              env=dict(env), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"probe_error": f"{python}: no answer within {timeout:g} s"}
    except OSError as exc:
        return {"probe_error": f"{python}: {exc}"}
    out = done.stdout.decode("utf-8", errors="replace")
    if _MARK in out:
        try:
            return json.loads(out.rsplit(_MARK, 1)[1].strip().splitlines()[0])
        except (ValueError, IndexError):
            pass
    tail = done.stderr.decode("utf-8", errors="replace").strip().splitlines()[-3:]
    return {"probe_error": f"{python}: exit status {done.returncode}"
            + (": " + " ".join(tail) if tail else "")}


def _real(path: str) -> str:
    # Not realpath: a venv's python is a link to the base interpreter, yet another environment.
    return os.path.normcase(os.path.abspath(path))


def interpreter_key(path: str) -> str:
    """The key under which interpreters count as the same (links are not resolved)."""
    return _real(path)


def _join(platform: str, *parts: str) -> str:
    sep = "\\" if platform == "win32" else "/"
    out = parts[0]
    for part in parts[1:]:
        out = out.rstrip("/\\") + sep + part
    return out

"""`cnnsetup onboard`: a student's whole first day, one step at a time: mirror, torch, verify,
report. Each finished step is recorded, so running it again after Ctrl-C or a failure picks up
where it stopped; every file it changes is written atomically, so an interruption leaves each
one whole.

The steps print as they go (through `say`); the caller decides how to ask for confirmation.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from cnnsetup.errors import CnnsetupError
from cnnsetup.i18n import _
from cnnsetup.report_schema import write_report
from cnnsetup.mirror import condarc_file, registry

# Failing findings that a (re)install of torch fixes.
REINSTALL_FINDINGS = ("torch.missing", "torch.cpu_only_with_gpu", "gpu.arch_unsupported",
                      "driver.too_old", "torch.cuda_unavailable")
# Failing findings about torch that a reinstall does not fix: shown with their own fix.
TORCH_AREAS = ("torch.", "numpy.", "gpu.", "driver.")
INSTALL_TIMEOUT_S = 3600.0  # a CUDA build of torch is a few GB


@dataclass
class Step:
    """One step's outcome, as it goes into the report."""

    name: str  # "mirror" | "torch" | "verify" | "report"
    status: str  # "done" | "already-done" | "skipped" | "failed"
    detail: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass
class OnboardOptions:
    mirror: str = "auto"
    install_torch: bool = False
    yes: bool = False
    report: Optional[Path] = None
    probe_timeout: float = 5.0


@dataclass
class OnboardResult:
    steps: list[Step] = field(default_factory=list)
    report: Optional[dict] = None
    report_path: Optional[Path] = None

    @property
    def ok(self) -> bool:
        return bool(self.report and self.report.get("ok")) and not any(
            s.status == "failed" for s in self.steps)


# --- where progress is remembered -------------------------------------------------------------

def state_path(env: Optional[Mapping[str, str]] = None, platform: str = sys.platform) -> Path:
    """cnnsetup's own record of onboard's progress, in the user's cache folder."""
    from cnnsetup.paths import cache_dir

    return cache_dir(env, platform) / "onboard.json"


def load_state(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    condarc_file.write_atomic(path, (json.dumps(state, indent=2) + "\n").encode("utf-8"))


# --- the flow ---------------------------------------------------------------------------------

def run_onboard(options: OnboardOptions, *, say: Callable[[str], None],
                confirm: Callable[[str], bool],
                show_verify: Callable[[Any], None],
                on_event: Optional[Callable[[str], None]] = None) -> OnboardResult:
    """Mirror, torch, verify, report, each shown through `say` as it happens (the verify
    result through `show_verify`, the command's own table)."""
    result = OnboardResult()
    state_file = state_path()
    state = load_state(state_file)

    say(_("Step 1/4: conda and pip mirror"))
    result.steps.append(_mirror_step(options, state, say, confirm))
    save_state(state_file, state)

    say(_("Step 2/4: PyTorch"))
    result.steps.append(_torch_step(options, state, say))
    save_state(state_file, state)

    say(_("Step 3/4: verify (training the reference CNN)"))
    from cnnsetup.machine.verify import VerifyOptions, current_mirrors, run_verify

    verified = run_verify(VerifyOptions(), on_event=on_event)
    show_verify(verified)
    result.steps.append(Step("verify", "done" if verified.ok else "failed",
                             _("all checks passed") if verified.ok else _("some checks failed")))
    state["verify"] = {"ok": verified.ok, "when": datetime.now().isoformat(timespec="seconds")}
    save_state(state_file, state)

    say(_("Step 4/4: report"))
    report = verified.to_json(mirror=current_mirrors(), kind="onboard")
    path = (options.report or Path.cwd() / default_report_name(report)).absolute()
    result.steps.append(Step("report", "done", str(path)))
    report["onboard"] = {"steps": [s.to_json() for s in result.steps]}
    write_report(report, path)
    result.report, result.report_path = report, path
    state["report"] = str(path)
    save_state(state_file, state)
    return result


def default_report_name(report: dict) -> str:
    """`cnnsetup-<host>-<date>.json`: a teaching assistant can tell sixty of them apart."""
    host = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in (report.get("host") or
                                                                           socket.gethostname()))
    return f"cnnsetup-{host or 'machine'}-{datetime.now():%Y%m%d}.json"


def _mirror_step(options: OnboardOptions, state: dict, say, confirm) -> Step:
    from cnnsetup.mirror import conda as conda_calls
    from cnnsetup.mirror.switch import make_plan, switch

    condarc = condarc_file.default_condarc()
    done = state.get("mirror") or {}
    wanted = options.mirror
    if done.get("done") and wanted in ("auto", done.get("name")) and done.get("condarc_sha256") == \
            _sha_of(condarc):
        say("  " + _("Already done: conda uses {mirror} (from an earlier run).").format(
            mirror=done["name"]))
        return Step("mirror", "already-done", done["name"])
    mirror = _choose_mirror(wanted, options.probe_timeout, say)
    if mirror is None:
        return Step("mirror", "skipped", _("no mirror answered"))
    try:
        plan = make_plan(mirror, condarc)
    except CnnsetupError as error:  # a broken .condarc: say why, and go on with the other steps
        say("  " + _("Error: {message}").format(message=error.message))
        return Step("mirror", "failed", error.message)
    pip_changes = _pip_index() != (None if mirror.is_official else mirror.pypi)
    if plan.changed or pip_changes:
        if plan.changed:
            say("  " + _("cnnsetup will change {path} (a backup keeps your original):").format(
                path=condarc))
            say(plan.diff().rstrip("\n"))
        if not options.yes and not confirm(_("Point conda and pip at {mirror} ({url})?").format(
                mirror=mirror.name, url=mirror.pypi)):
            say("  " + _("Left unchanged. To switch later: {command}").format(
                command=f"cnnsetup mirror {mirror.name} --pip"))
            return Step("mirror", "skipped", _("not confirmed"))
    try:
        switch(mirror, condarc)
    except CnnsetupError as error:
        say("  " + _("Error: {message}").format(message=error.message))
        return Step("mirror", "failed", error.message)
    pip_text, pip_ok = _switch_pip(mirror, condarc, say)
    conda_path = conda_calls.find_conda()
    if conda_path is None:
        say("  " + _("conda is not installed. Install Miniconda from the mirror, then run "
                     "`{command}` again:").format(command="cnnsetup onboard"))
        say("    " + miniconda_url(mirror))
    else:
        from cnnsetup.mirror.confirm import confirm_switch

        report = confirm_switch(mirror, conda_path, condarc=str(condarc), clean=plan.changed)
        for _level, text in report.lines():
            say("  " + text)
    say("  " + _("conda now points at {mirror}; {pip}").format(mirror=mirror.name, pip=pip_text))
    # Recorded as done only when pip followed too, so that the next run tries pip again.
    state["mirror"] = {"done": pip_ok, "name": mirror.name, "condarc_sha256": _sha_of(condarc)}
    return Step("mirror", "done" if pip_ok else "failed", mirror.name if pip_ok else pip_text)


def _pip_index() -> Optional[str]:
    """pip's user index-url now (None: PyPI); unknown counts as "would change"."""
    from cnnsetup.mirror import pip

    try:
        return pip.get_index_url()
    except CnnsetupError:
        return "?"


def _choose_mirror(wanted: str, timeout: float, say) -> Optional[registry.Mirror]:
    if wanted != "auto":
        return registry.get(wanted)
    from cnnsetup.mirror import speedtest

    say("  " + _("Probing the mirrors (at most {seconds} s)...").format(seconds=timeout))
    best = speedtest.fastest(speedtest.probe_all(timeout=timeout), exclude=speedtest.AUTO_EXCLUDED)
    if best is None:
        say("  " + _("No mirror answered; conda and pip keep their current settings."))
        return None
    say("  " + _("Fastest mirror from here: {mirror} ({ms} ms).").format(
        mirror=best.mirror, ms=round((best.latency_s or 0) * 1000)))
    return registry.get(best.mirror)


def _switch_pip(mirror: registry.Mirror, condarc: Path, say) -> tuple[str, bool]:
    """Point pip at the mirror; (words for the user, whether it worked)."""
    from cnnsetup.mirror import pip

    try:
        change = pip.point_at(mirror, condarc)
    except CnnsetupError as error:
        say("  " + _("pip was not changed: {error}").format(error=error.message))
        return _("pip unchanged"), False
    if not change.in_effect:
        say("  " + _("pip's user file now names {url}, but pip install will keep using "
                     "{effective} (set by {source}) until that is changed.").format(
            url=change.current or pip.PYPI, effective=change.effective,
            source=change.effective_source))
        return _("pip uses {url}").format(url=change.effective), False
    return _("pip uses {url}").format(url=change.current or pip.PYPI), True


def miniconda_url(mirror: registry.Mirror, platform: str = sys.platform) -> str:
    """Where to download the Miniconda installer: the mirror's archive, else upstream's."""
    import platform as platform_module

    machine = platform_module.machine().lower()
    if platform == "win32":
        name = "Miniconda3-latest-Windows-x86_64.exe"
    elif platform == "darwin":
        name = "Miniconda3-latest-MacOSX-arm64.sh" if machine == "arm64" else \
            "Miniconda3-latest-MacOSX-x86_64.sh"
    else:
        name = "Miniconda3-latest-Linux-aarch64.sh" if machine in ("aarch64", "arm64") else \
            "Miniconda3-latest-Linux-x86_64.sh"
    base = mirror.defaults_base if mirror.defaults_base and not mirror.is_official else \
        "https://repo.anaconda.com"
    return f"{base}/miniconda/{name}"


def _torch_step(options: OnboardOptions, state: dict, say) -> Step:
    from cnnsetup.machine.facts import collect
    from cnnsetup.machine.findings import evaluate
    from cnnsetup.machine.torch_install import machine_from_facts, recommend

    facts = collect()
    failing = [f for f in evaluate(facts) if f.status == "fail"]
    problems = [f for f in failing if f.id in REINSTALL_FINDINGS]
    others = [f for f in failing if f not in problems and f.id.startswith(TORCH_AREAS)]
    if not problems and not others:
        version = facts.torch.version or "?"
        say("  " + _("torch {version} fits this machine.").format(version=version))
        previous = (state.get("torch") or {}).get("version")
        state["torch"] = {"done": True, "version": version}
        return Step("torch", "already-done" if previous == version else "done", version)
    if not problems:  # broken in a way a reinstall does not fix (a DLL, NumPy, a crash)
        for finding in others:
            say("  " + finding.summary)
            if finding.fix:
                say("  " + _("Fix:") + " " + finding.fix.replace("\n", "\n       "))
        return Step("torch", "failed", ", ".join(f.id for f in others))
    mirror_name = (state.get("mirror") or {}).get("name")
    rec = recommend(machine_from_facts(facts), mirror=mirror_name)
    for finding in problems:
        say("  " + finding.summary)
    say("  " + _("The install command for this machine:"))
    for line in rec.commands:
        say("    " + line)
    if not options.install_torch:
        say("  " + _("Run it yourself, or run `{command}` to let cnnsetup do it.").format(
            command="cnnsetup onboard --install-torch"))
        return Step("torch", "skipped", rec.command)
    for line in rec.commands:
        argv = install_argv(line)
        say("  $ " + " ".join(argv))
        code = _run_visible(argv)
        if code != 0:
            return Step("torch", "failed", _("`{command}` exited with {code}").format(
                command=line, code=code))
    state["torch"] = {"done": True, "command": rec.command}
    return Step("torch", "done", rec.command)


def install_argv(command: str, python: str = sys.executable) -> list[str]:
    """A pasteable `python -m pip ...` line as an argument list for this interpreter."""
    argv = shlex.split(command, posix=True)
    if argv and argv[0] in ("python", "python3", "py"):
        argv[0] = python
    return argv


def _run_visible(argv: list[str]) -> int:
    """Run pip with its own progress on the user's terminal (not captured), with a time limit."""
    try:
        return subprocess.run(argv, timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL).returncode
    except subprocess.TimeoutExpired:
        return 124
    except OSError:
        return 127


def _sha_of(path: Path) -> Optional[str]:
    try:
        return condarc_file.sha256(path.read_bytes())
    except OSError:
        return None

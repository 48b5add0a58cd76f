"""`cnnsetup onboard`: a student's whole first day, one step at a time: mirror, torch, verify,
report. Each finished step is recorded, so running it again after Ctrl-C or a failure picks up
where it stopped; every file it changes is written atomically, so an interruption leaves each
one whole.

The steps print as they go (through `say`); the caller decides how to ask. No step's outcome
is hidden: a failed torch install stops the day there, with the command, its last lines of
output and the fix; "no mirror answered" is a warning in the summary and the report; Ctrl-C and
a closed stdout (`onboard | head`) save the progress and say how to go on.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import click

from cnnsetup.errors import CnnsetupError, Interrupted, OutputClosed
from cnnsetup.i18n import _
from cnnsetup.render import silence_stdout
from cnnsetup.report_schema import with_student, write_report
from cnnsetup.mirror import condarc_file, registry

# Failing findings that a (re)install of torch fixes.
REINSTALL_FINDINGS = ("torch.missing", "torch.cpu_only_with_gpu", "gpu.arch_unsupported",
                      "driver.too_old", "torch.cuda_unavailable")
# Failing findings about torch that a reinstall does not fix: shown with their own fix.
TORCH_AREAS = ("torch.", "numpy.", "gpu.", "driver.")
INSTALL_TIMEOUT_S = 3600.0  # a CUDA build of torch is a few GB
INSTALL_TAIL_LINES = 15  # the last lines of a failed install's output that are shown again


@dataclass
class Step:
    """One step's outcome, as it goes into the report."""

    name: str  # "mirror" | "torch" | "verify" | "report"
    status: str  # "done" | "already-done" | "skipped" | "warning" | "failed"
    detail: str = ""
    unchecked: bool = False  # a mirror step that switched, but no channel answered to be checked

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass
class OnboardOptions:
    mirror: str = "auto"
    install_torch: bool = False
    yes: bool = False
    report: Optional[Path] = None
    probe_timeout: float = 5.0
    interactive: bool = False  # a person at a terminal can be asked
    student: Optional[str] = None  # name or student number for the report (asked once if None)


@dataclass
class OnboardResult:
    steps: list[Step] = field(default_factory=list)
    report: Optional[dict] = None
    report_path: Optional[Path] = None
    verified: Any = None  # verify's result, when the proof ran
    warnings: list[str] = field(default_factory=list)  # translated, for the summary
    stopped: Optional[str] = None  # why the day stopped before the proof (translated)

    @property
    def ok(self) -> bool:
        return bool(self.report and self.report.get("ok")) and not any(
            s.status == "failed" for s in self.steps) and self.stopped is None


class InstallFailed(Exception):
    """A torch install command exited non-zero: the day stops there (verify would only fail)."""

    def __init__(self, command: str, code: int, tail: list[str], fix: list[str]) -> None:
        super().__init__(command)
        self.command, self.code, self.tail, self.fix = command, code, tail, fix


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
                on_event: Optional[Callable[[str], None]] = None,
                ask: Optional[Callable[[str], str]] = None) -> OnboardResult:
    """Mirror, torch, verify, report, each shown through `say` as it happens (the verify
    result through `show_verify`, the command's own table).

    Raises `Interrupted` (Ctrl-C) and `OutputClosed` (stdout closed under it) after saving the
    progress and saying, on stderr, what was finished and how to go on."""
    result = OnboardResult()
    state_file = state_path()
    state = load_state(state_file)
    output = _Output(say)
    try:
        student = _student(options, state, ask)
        save_state(state_file, state)
        _run_steps(options, state, state_file, result, output.say, confirm,
                   output.guard(show_verify), on_event, student, output.check)
    except (KeyboardInterrupt, click.exceptions.Abort):  # Ctrl-C, also at one of its questions
        save_state(state_file, state)
        raise Interrupted(_stopped_message(_("Interrupted."), result),
                          hint=_resume_hint()) from None
    except BrokenPipeError:
        save_state(state_file, state)
        silence_stdout()
        raise OutputClosed(_stopped_message(_("The output was closed (stdout)."), result),
                           hint=_resume_hint()) from None
    return result


class _Output:
    """`say` that survives a closed stdout: the step under way still finishes (its change and
    its record stay together), and `check` stops the day before the next step."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self.closed = False

    def say(self, text: str) -> None:
        if self.closed:
            return
        try:
            self._say(text)
        except BrokenPipeError:
            self.closed = True
            silence_stdout()

    def guard(self, show: Callable[[Any], None]) -> Callable[[Any], None]:
        def guarded(value: Any) -> None:
            if self.closed:
                return
            try:
                show(value)
            except BrokenPipeError:
                self.closed = True
                silence_stdout()
        return guarded

    def check(self) -> None:
        if self.closed:
            raise BrokenPipeError("stdout was closed")


def _run_steps(options, state, state_file, result, say, confirm, show_verify, on_event,
               student, between_steps) -> None:
    say(_("Step 1/4: conda and pip mirror"))
    mirror_step = _mirror_step(options, state, say, confirm)
    result.steps.append(mirror_step)
    if mirror_step.status == "warning":
        result.warnings.append(mirror_step.detail)
    save_state(state_file, state)
    between_steps()

    say(_("Step 2/4: PyTorch"))
    try:
        torch_step = _torch_step(options, state, say, confirm)
    except InstallFailed as failed:
        save_state(state_file, state)
        result.steps.append(Step("torch", "failed", _("`{command}` exited with {code}").format(
            command=failed.command, code=failed.code)))
        _say_install_failure(failed, say)
        result.stopped = _("The torch install failed, so the day stops before verify.")
        return
    result.steps.append(torch_step)
    save_state(state_file, state)
    between_steps()

    say(_("Step 3/4: verify (training the reference CNN)"))
    from cnnsetup.machine.verify import VerifyOptions, current_mirrors, run_verify

    verified = run_verify(VerifyOptions(), on_event=on_event)
    result.verified = verified
    show_verify(verified)
    result.steps.append(Step("verify", "done" if verified.ok else "failed",
                             _("all checks passed") if verified.ok else _("some checks failed")))
    state["verify"] = {"ok": verified.ok, "when": datetime.now().isoformat(timespec="seconds")}
    save_state(state_file, state)
    between_steps()

    say(_("Step 4/4: report"))
    report = verified.to_json(mirror=current_mirrors(), kind="onboard")
    path = (options.report or Path.cwd() / default_report_name(report)).absolute()
    result.steps.append(Step("report", "done", str(path)))
    report = with_student(report, student)  # right after `user`, as verify writes it
    report["onboard"] = {"steps": [s.to_json() for s in result.steps]}
    report["checks"] = list(report.get("checks") or []) + _onboard_checks(result.steps)
    write_report(report, path)
    result.report, result.report_path = report, path
    state["report"] = str(path)
    save_state(state_file, state)


def _onboard_checks(steps: list[Step]) -> list[dict]:
    """Report checks for what onboard itself could not do (a warning the class table shows)."""
    from cnnsetup.i18n import using_language

    checks = []
    for step in steps:
        if step.name == "mirror" and step.status == "warning":
            with using_language("en"):
                summary = _("The mirror is set, but no channel answered, so none was checked.") \
                    if step.unchecked else \
                    _("No mirror answered; conda and pip keep their current settings.")
            checks.append({"id": "onboard.mirror_unchecked" if step.unchecked else "onboard.no_mirror",
                           "status": "warn", "summary": summary,
                           "fix": "cnnsetup mirror test", "detail": step.detail})
    return checks


def _student(options: OnboardOptions, state: dict, ask) -> Optional[str]:
    """Who this machine belongs to in the class report: --student, else what was given in an
    earlier run, else asked once on a terminal (Enter skips it, and it is not asked again)."""
    if options.student is not None:
        state["student"] = options.student.strip() or None
    elif "student" not in state and options.interactive and ask is not None:
        state["student"] = ask(_("Your name or student number, for the report (Enter to skip)"))\
            .strip() or None
    from cnnsetup.report_schema import clean_student

    try:
        return clean_student(state.get("student"))
    except ValueError:  # remembered by an older cnnsetup, or given from Python: never a name
        state.pop("student", None)
        return None


def _stopped_message(what: str, result: OnboardResult) -> str:
    """"Interrupted. Finished: mirror (done), torch (done)." in the user's language."""
    finished = [_("{step} ({status})").format(step=s.name, status=_step_word(s.status))
                for s in result.steps]
    steps = _(", ").join(finished) if finished else _("nothing yet")
    return _("{what} {finished}").format(what=what,
                                         finished=_("Finished: {steps}.").format(steps=steps))


def _step_word(status: str) -> str:
    return {"done": _("done"), "already-done": _("done earlier"), "skipped": _("skipped"),
            "warning": _("warning"), "failed": _("failed")}.get(status, status)


def _resume_hint() -> str:
    return _("Run `{command}` again to continue: finished steps are not repeated.").format(
        command="cnnsetup onboard")


def _say_install_failure(failed: InstallFailed, say) -> None:
    say("  " + _("This command failed (exit status {code}):").format(code=failed.code))
    say("    " + failed.command)
    if failed.tail:
        say("  " + _("Its last lines of output:"))
        for line in failed.tail:
            say("    | " + line)
    say("  " + _("Fix: read the error above, then run `{command}` again, or the commands "
                 "yourself:").format(command="cnnsetup onboard --install-torch"))
    for line in failed.fix:
        say("    " + line)


def default_report_name(report: dict) -> str:
    """`cnnsetup-<host>-<date>.json`: a teaching assistant can tell sixty of them apart."""
    host = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in (report.get("host") or
                                                                           socket.gethostname()))
    return f"cnnsetup-{host or 'machine'}-{datetime.now():%Y%m%d}.json"


def _mirror_step(options: OnboardOptions, state: dict, say, confirm) -> Step:
    from cnnsetup.mirror import conda as conda_calls
    from cnnsetup.mirror.switch import live_check, make_plan, switch

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
        detail = _("no mirror answered")
        mixed = _mixed_channels()
        if mixed:
            say("  " + mixed)
            detail = f"{detail}; {mixed}"
        return Step("mirror", "warning", detail)
    try:
        # Every channel is checked live first, as `cnnsetup mirror NAME` does: a dead pkgs/r is
        # left out (and the plan shown is the file that will be written), a dead pkgs/main
        # refuses. CNNSETUP_OFFLINE=1 skips the check.
        unreachable = False
        if not _offline() and not mirror.is_official:
            decision = live_check(mirror, condarc)
            mirror, unreachable = decision.mirror, decision.unreachable
            for note in decision.notes + decision.warnings:
                say("  " + note)
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
        switch(mirror, condarc)  # the mirror as checked live above
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
        if report.channel_urls:  # what conda itself answered, not what the file says
            say("  " + _("Channel URLs conda uses now ({command}):").format(
                command="conda info --json"))
            for url in report.channel_urls:
                say("    " + url)
    say("  " + _("conda now points at {mirror}; {pip}").format(mirror=mirror.name, pip=pip_text))
    # Recorded as done only when pip followed too, so that the next run tries pip again.
    state["mirror"] = {"done": pip_ok, "name": mirror.name, "condarc_sha256": _sha_of(condarc)}
    if pip_ok and unreachable:  # switched, but no channel could be checked: say so in the summary
        return Step("mirror", "warning", _("{mirror}, unchecked: no channel answered (offline?)")
                    .format(mirror=mirror.name), unchecked=True)
    return Step("mirror", "done" if pip_ok else "failed", mirror.name if pip_ok else pip_text)


def _mixed_channels() -> Optional[str]:
    """When conda's channels point at more than one server (the blog's half-edited .condarc),
    the sentence that says so; None when they agree or cannot be told."""
    from cnnsetup.mirror.status import collect_status

    try:
        status = collect_status()
    except (CnnsetupError, OSError):
        return None
    if status.mirror is None and status.intended:
        return _("conda's channels still mix {mirror} with other servers (see `{command}`).")\
            .format(mirror=status.intended, command="cnnsetup mirror status")
    return None


def _offline() -> bool:
    """CNNSETUP_OFFLINE=1 (as for `cnnsetup mirror NAME --offline`): no live channel check."""
    return os.environ.get("CNNSETUP_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


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


def _torch_step(options: OnboardOptions, state: dict, say, confirm=None) -> Step:
    """Check torch; when a (re)install fixes what is wrong, offer the build `torch-command`
    chooses for this machine (through the chosen mirror), and run it only when allowed:
    --install-torch, or a yes at the terminal. Raises `InstallFailed` when a command fails."""
    from cnnsetup.machine.facts import collect
    from cnnsetup.machine.findings import evaluate

    facts = collect()
    failing = [f for f in evaluate(facts) if f.status == "fail"]
    earlier = state.get("torch") or {}
    if earlier.get("install_failed"):
        # A half-finished install leaves torch broken in ways of its own (a missing dependency):
        # installing again is what fixes it.
        problems = [f for f in failing if f.id.startswith(TORCH_AREAS)]
    else:
        problems = [f for f in failing if f.id in REINSTALL_FINDINGS]
    others = [f for f in failing if f not in problems and f.id.startswith(TORCH_AREAS)]
    if not problems and not others:
        version = facts.torch.version or "?"
        say("  " + _("torch {version} fits this machine.").format(version=version))
        state["torch"] = {"done": True, "version": version}
        return Step("torch", "already-done" if earlier.get("version") == version else "done",
                    version)
    if not problems:  # broken in a way a reinstall does not fix (a DLL, NumPy, a crash)
        for finding in others:
            say("  " + finding.summary)
            if finding.fix:
                say("  " + _("Fix: {command}").format(
                    command=finding.fix.replace("\n", "\n       ")))
        return Step("torch", "failed", ", ".join(f.id for f in others))
    rec = recommend_install(facts, chosen_mirror(options, state))
    for finding in problems:
        say("  " + finding.summary)
    say("  " + _("The install command for this machine:"))
    for line in rec.commands:  # with this interpreter's full path: pip must install into it
        say("    " + shell_join(install_argv(line)))
    if not _may_install(options, confirm, say):
        return Step("torch", "skipped", rec.command)
    state["torch"] = {"done": False, "command": rec.command}
    for line in rec.commands:
        argv = install_argv(line)
        shown = shell_join(argv)
        say("  $ " + shown)
        code, tail = run_install(argv, say)
        if code != 0:
            state["torch"] = {"done": False, "command": rec.command, "install_failed": shown}
            raise InstallFailed(shown, code, tail, [shell_join(install_argv(c))
                                                    for c in rec.commands])
    state["torch"] = {"done": True, "command": rec.command}
    return Step("torch", "done", rec.command)


def _may_install(options: OnboardOptions, confirm, say) -> bool:
    """--install-torch says yes; else a person at the terminal is asked; else nothing runs."""
    if options.install_torch:
        return True
    if options.interactive and not options.yes and confirm is not None:
        if confirm(_("Install this torch build now?")):
            return True
        say("  " + _("Not installed. Run the command yourself, or `{command}` later.").format(
            command="cnnsetup onboard --install-torch"))
        return False
    say("  " + _("Not installed (nobody to ask). Run it yourself, or run `{command}` to let "
                 "cnnsetup do it.").format(command="cnnsetup onboard --install-torch"))
    return False


def chosen_mirror(options: OnboardOptions, state: dict) -> Optional[str]:
    """The mirror torch's dependencies come from: the one the mirror step switched to, else the
    one named with --mirror, else none (pip's own configuration)."""
    done = (state.get("mirror") or {}).get("name")
    if done:
        return done
    return None if options.mirror == "auto" else options.mirror


def recommend_install(facts, mirror_name: Optional[str]):
    """The build `cnnsetup torch-command` chooses for this machine, through `mirror_name`."""
    from cnnsetup.machine.torch_install import machine_from_facts, recommend

    return recommend(machine_from_facts(facts), mirror=mirror_name)


def install_argv(command: str, python: str = sys.executable) -> list[str]:
    """A pasteable `python -m pip ...` line as an argument list for this interpreter."""
    argv = shlex.split(command, posix=True)
    if argv and argv[0] in ("python", "python3", "py"):
        argv[0] = python
    return argv


def shell_join(argv: list[str], platform: str = sys.platform) -> str:
    """`argv` as one line to paste into the user's shell (cmd.exe quoting on Windows)."""
    if platform == "win32":
        return subprocess.list2cmdline(argv)
    return shlex.join(argv)


def run_install(argv: list[str], say, timeout: float = INSTALL_TIMEOUT_S) -> tuple[int, list[str]]:
    """Run an install command, showing its output as it comes (indented), with a time limit.

    Returns (exit status, its last INSTALL_TAIL_LINES lines); 124 on timeout, 127 when it could
    not start (the error is the last line)."""
    tail: collections.deque[str] = collections.deque(maxlen=INSTALL_TAIL_LINES)
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                                   errors="replace", bufsize=1)
    except OSError as error:
        return 127, [str(error)]
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\r\n")
            tail.append(line)
            say("    " + line)
        code = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        timer.cancel()
    if timed_out.is_set():
        tail.append(_("(stopped after {seconds} s)").format(seconds=round(timeout)))
        return 124, list(tail)
    return code, list(tail)


def _sha_of(path: Path) -> Optional[str]:
    try:
        return condarc_file.sha256(path.read_bytes())
    except OSError:
        return None

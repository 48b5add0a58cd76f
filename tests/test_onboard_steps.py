"""onboard's steps one by one, without the training run: a torch install that fails (real pip
against a package index on 127.0.0.1) stops the day with the command, its last lines and the
fix through the chosen mirror; the build is offered at a terminal and nothing runs without
one; a half-finished install is repaired on the next run; the student is asked once (again
only for text that can never be a name); a closed stdout saves the progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cnnsetup.classroom import onboard as onboard_module
from cnnsetup.machine import findings
from tests.conda_helpers import make_install
from tests.conftest import REPO_ROOT
from tests.machine_helpers import pretend_torch_missing

MISSING_PACKAGE = "cnnsetup-test-no-such-package"


class _Index(BaseHTTPRequestHandler):
    """A PEP 503 package index that knows no package: pip says "No matching distribution"."""

    requests: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def empty_index(monkeypatch):
    """The URL of a loopback index serving nothing; pip reads no configuration file."""
    _Index.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # not /etc/pip.conf's find-links
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()


@pytest.fixture(scope="module")
def _collected() -> list:
    return []


@pytest.fixture(autouse=True)
def facts_once(_collected, monkeypatch):
    """The torch step looks at this machine (a worker that imports torch) once for this file:
    the facts are the same for every test here, and each test decides what this torch counts
    as through `findings.evaluate`."""
    from cnnsetup.machine import facts

    real = facts.collect

    def collect(*args, **kwargs):
        if not _collected:
            _collected.append(real(*args, **kwargs))
        return _collected[0]

    monkeypatch.setattr(facts, "collect", collect)


@dataclass
class _Rec:
    commands: list[str]
    mirror: str | None = None

    @property
    def command(self) -> str:
        return "\n".join(self.commands)


@pytest.fixture
def torch_missing(monkeypatch):
    """This machine's torch counts as missing (a finding only; torch itself stays)."""
    pretend_torch_missing(monkeypatch)


@pytest.fixture
def install_from(monkeypatch, empty_index):
    """The build onboard offers: one command against the loopback index; records the mirror
    it was asked to go through."""
    asked: list = []

    def recommend_install(facts, mirror_name):
        asked.append(mirror_name)
        return _Rec([f"python -m pip install {MISSING_PACKAGE} --index-url {empty_index}"],
                    mirror_name)

    monkeypatch.setattr(onboard_module, "recommend_install", recommend_install)
    return asked


@dataclass
class _Person:
    """Answers onboard's questions and remembers them."""

    answer: bool = True
    name: str = ""
    questions: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer

    def ask(self, question: str) -> str:
        self.questions.append(question)
        return self.name

    def say(self, text: str) -> None:
        self.said.append(text)


def test_a_failed_install_stops_the_day_with_the_command_its_output_and_the_fix(
        invoke, torch_missing, install_from, tmp_path, isolated_home):
    report = tmp_path / "report.json"
    result = invoke("onboard", "--mirror", "tsinghua", "--install-torch",
                    "--report", str(report))
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "This command failed (exit status 1)" in out
    assert f"{sys.executable} -m pip install {MISSING_PACKAGE}" in out  # the full interpreter
    assert "Its last lines of output:" in out
    assert "No matching distribution found for " + MISSING_PACKAGE in out.split(
        "Its last lines of output:")[1]
    assert "Step 3/4" not in out and not report.exists()  # stopped before verify
    assert "FAIL" in out and "cnnsetup onboard" in out.split("Summary")[1]
    assert install_from == ["tsinghua"]  # the fix goes through the chosen mirror
    state = json.loads(onboard_module.state_path().read_text(encoding="utf-8"))
    assert MISSING_PACKAGE in state["torch"]["install_failed"]


def test_a_half_finished_install_is_installed_again_on_the_next_run(
        monkeypatch, install_from, isolated_home):
    real = findings.evaluate

    def broken(facts, recommendation=None):  # what a half-installed torch looks like
        found = [f for f in real(facts, recommendation) if not f.id.startswith("torch.")]
        return found + [findings.Finding(
            "torch.import_error", "fail", "import torch fails.", "python -m pip install torch",
            "ModuleNotFoundError: No module named 'typing_extensions'")]

    monkeypatch.setattr(findings, "evaluate", broken)
    person = _Person()
    options = onboard_module.OnboardOptions(mirror="auto", install_torch=True)
    # First without a failed install behind it: a broken import is not a reinstall's job.
    step = onboard_module._torch_step(options, {}, person.say, person.confirm)
    assert step.status == "failed" and install_from == []
    state = {"mirror": {"done": True, "name": "bfsu"},
             "torch": {"done": False, "install_failed": "pip install torch"}}
    with pytest.raises(onboard_module.InstallFailed) as failed:
        onboard_module._torch_step(options, state, person.say, person.confirm)
    assert install_from == ["bfsu"]  # the mirror the mirror step switched to
    assert MISSING_PACKAGE in failed.value.fix[0]


def test_at_a_terminal_the_build_is_offered_and_a_no_runs_nothing(
        torch_missing, install_from, isolated_home, empty_index):
    person = _Person(answer=False)
    options = onboard_module.OnboardOptions(mirror="tsinghua", interactive=True)
    step = onboard_module._torch_step(options, {}, person.say, person.confirm)
    assert person.questions == ["Install this torch build now?"]
    assert step.status == "skipped" and _Index.requests == []

    person = _Person(answer=True)
    with pytest.raises(onboard_module.InstallFailed):
        onboard_module._torch_step(options, {}, person.say, person.confirm)
    assert person.questions == ["Install this torch build now?"]
    assert any(MISSING_PACKAGE in path for path in _Index.requests)  # pip really asked


def test_without_a_terminal_nothing_is_installed_and_it_says_what_it_would_run(
        torch_missing, install_from, isolated_home, empty_index):
    person = _Person()
    options = onboard_module.OnboardOptions(mirror="tsinghua", yes=True, interactive=False)
    step = onboard_module._torch_step(options, {}, person.say, person.confirm)
    assert step.status == "skipped" and person.questions == [] and _Index.requests == []
    text = "\n".join(person.said)
    assert f"pip install {MISSING_PACKAGE}" in text
    assert "cnnsetup onboard --install-torch" in text


def test_the_install_output_is_shown_as_it_comes_and_its_tail_kept(tmp_path):
    lines: list[str] = []
    code, tail = onboard_module.run_install(
        [sys.executable, "-c", "import sys\nfor i in range(40): print('line', i)\nsys.exit(3)"],
        lines.append)
    assert code == 3
    assert len(lines) == 40 and tail == [f"line {i}" for i in range(25, 40)]
    code, tail = onboard_module.run_install(
        [sys.executable, "-c", "import time; time.sleep(30)"], lines.append, timeout=1)
    assert code == 124 and "stopped after" in tail[-1]
    code, tail = onboard_module.run_install([str(tmp_path / "no-such-program")], lines.append)
    assert code == 127


def test_the_student_is_asked_once_and_remembered():
    state: dict = {}
    person = _Person(name="  Li Lei 2023011234 ")
    options = onboard_module.OnboardOptions(interactive=True)
    assert onboard_module._student(options, state, person.ask) == "Li Lei 2023011234"
    assert onboard_module._student(options, state, person.ask) == "Li Lei 2023011234"
    assert len(person.questions) == 1
    # Enter skips it, and it is not asked again; --student always wins.
    state = {}
    assert onboard_module._student(options, state, _Person(name="").ask) is None
    assert onboard_module._student(options, state, person.ask) is None
    assert onboard_module._student(
        onboard_module.OnboardOptions(student="Han Meimei"), state, None) == "Han Meimei"
    # Without a terminal nobody is asked.
    silent = _Person(name="x")
    assert onboard_module._student(onboard_module.OnboardOptions(), {}, silent.ask) is None
    assert silent.questions == []


def test_a_closed_stdout_saves_the_progress_and_says_so_on_stderr(tmp_path, monkeypatch,
                                                                  isolated_home):
    conda = make_install(tmp_path / "miniconda3", log=tmp_path / "calls.jsonl")
    env = dict(os.environ, PATH=f"{conda.parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO_ROOT))
    env.pop("LANGUAGE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnsetup", "onboard", "--yes", "--mirror", "tsinghua",
         "--report", str(tmp_path / "r.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    first = [process.stdout.readline() for _ in range(3)]  # `onboard --yes | head -3`
    process.stdout.close()
    stderr = process.stderr.read()
    code = process.wait(timeout=300)
    assert first[0].startswith("Step 1/4")
    assert code == 1, stderr
    assert "The output was closed" in stderr and "cnnsetup onboard" in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    state = json.loads(onboard_module.state_path().read_text(encoding="utf-8"))
    assert state["mirror"]["name"] == "tsinghua"  # the finished step is remembered
    assert not (tmp_path / "r.json").exists()


def test_ctrl_c_at_a_question_says_what_was_finished_and_how_to_go_on(isolated_home):
    import click

    from cnnsetup.errors import Interrupted

    def ctrl_c(question):
        raise click.exceptions.Abort()

    options = onboard_module.OnboardOptions(interactive=True)
    with pytest.raises(Interrupted) as stopped:
        onboard_module.run_onboard(options, say=lambda text: None, confirm=ctrl_c, ask=ctrl_c,
                                   show_verify=lambda verified: None)
    assert stopped.value.exit_code == 130
    assert "Finished: nothing yet." in stopped.value.message
    assert "cnnsetup onboard" in stopped.value.hint
    assert onboard_module.state_path().is_file()


def test_a_typed_student_that_can_never_be_a_name_is_asked_again(monkeypatch, capsys):
    import io

    from cnnsetup.commands.onboard import _ask

    monkeypatch.setattr("sys.stdin", io.StringIO("x" * 200 + "\n  Li  Lei 2023011234 \n"))
    assert _ask("Your name or student number") == "Li Lei 2023011234"
    out = capsys.readouterr().out
    assert out.count("Your name or student number") == 2 and "at most 100 characters" in out


def test_an_empty_student_option_still_forgets_the_remembered_one(isolated_home):
    from cnnsetup.commands.onboard import _checked_student

    assert _checked_student(None) is None and _checked_student("  ") == ""
    state = {"student": "Li Lei"}
    options = onboard_module.OnboardOptions(student=_checked_student(""))
    assert onboard_module._student(options, state, None) is None


def test_a_remembered_student_that_can_never_be_a_name_is_forgotten_not_a_crash():
    # An older cnnsetup kept what was typed as is (an arrow key's escape included); the report
    # now refuses such text, which crashed every later run at its last step.
    from cnnsetup.classroom.onboard import OnboardOptions, _student

    state = {"student": "Bob\x1b[D"}
    assert _student(OnboardOptions(), state, None) is None and "student" not in state
    state = {"student": "  Li   Lei "}
    assert _student(OnboardOptions(), state, None) == "Li Lei"

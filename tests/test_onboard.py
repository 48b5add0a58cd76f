"""`cnnsetup onboard`: the first-day flow end to end on the CPU, with a stand-in conda and mirrors
served on 127.0.0.1; an interrupted run resumed; the refusals that leave files alone.

The reference CNN is trained once in this file, by the one end-to-end day (`first_day`). The
other tests are about the steps around the proof (the mirror, pip, resuming, the summary, the
report): each runs its own onboard, in its own home, and its verify step is handed that real
day's proof (`proved_once`) instead of training the same network on the same interpreter again."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs torch: install the CPU build (see README.md)")

import json
import shlex
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cnnsetup.classroom import onboard as onboard_module
from cnnsetup.mirror import condarc_file, speedtest
from tests import report_helpers as rh
from tests.conda_helpers import calls, make_install
from tests.conftest import REPO_ROOT, run_cnnsetup
from tests.machine_helpers import write_fake_torch


class _Mirror(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.send_response(200 if self.path.startswith("/ok/") else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD


def _open_classroom(root, monkeypatch):
    """Mirrors on loopback where only nju answers, conda installed (a stand-in, first on PATH),
    pip's global files out of the way, and this checkout importable by the worker."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Mirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    targets = {name: f"{base}/missing/{name}" for name in ("tsinghua", "bfsu", "sjtu", "aliyun")}
    targets["nju"] = f"{base}/ok/nju"
    monkeypatch.setattr(speedtest, "default_targets", lambda mirrors=None: dict(targets))
    log = root / "conda-calls.jsonl"
    conda = make_install(root / "miniconda3", log=log)
    monkeypatch.setenv("PATH", f"{conda.parent}:{root / 'bin'}")
    xdg_dirs = root / "xdg-dirs"
    xdg_dirs.mkdir()
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(xdg_dirs))
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    return server, {"log": log, "report": root / "report.json", "base": base,
                    "mirrors": sorted(targets)}


@pytest.fixture
def classroom(tmp_path, monkeypatch, isolated_home):
    """A student's machine (see `_open_classroom`), in this test's home."""
    server, room = _open_classroom(tmp_path, monkeypatch)
    yield {"home": isolated_home, **room}
    server.shutdown()


@pytest.fixture(scope="module")
def _days() -> dict:
    return {}


@pytest.fixture
def first_day(_days, tmp_path, invoke):
    """The one real first day of this file: `onboard --yes` in a classroom and a home of its
    own (not the asking test's), with the real proof: the reference CNN trained on the CPU.
    Run by the first test that needs it; what it printed, wrote and proved is kept:
    {"result", "report" (its path), "report_text", "condarc", "conda_calls", "verified",
    "torch_facts", ...}."""
    if "day" not in _days:
        from cnnsetup.machine import facts as facts_module
        from cnnsetup.machine import verify as verify_module

        root = tmp_path / "first-day"
        home = root / "home"
        home.mkdir(parents=True)
        (root / "bin").mkdir()
        seen: dict = {}
        real_verify, real_collect = verify_module.run_verify, facts_module.collect

        def run_verify(options, **kwargs):
            seen["verified"] = real_verify(options, **kwargs)
            return seen["verified"]

        def collect(*args, **kwargs):
            seen["torch_facts"] = real_collect(*args, **kwargs)
            return seen["torch_facts"]

        with pytest.MonkeyPatch.context() as monkeypatch:
            for name in ("HOME", "USERPROFILE"):
                monkeypatch.setenv(name, str(home))
            monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
            monkeypatch.setenv("CONDARC", str(root / "no-such-condarc" / ".condarc"))
            monkeypatch.setattr(verify_module, "run_verify", run_verify)
            monkeypatch.setattr(facts_module, "collect", collect)
            server, room = _open_classroom(root, monkeypatch)
            try:
                result = invoke("onboard", "--yes", "--student", "  陈七 2023011234 ",
                                "--report", str(room["report"]))
            finally:
                server.shutdown()
        condarc = home / ".condarc"
        _days["day"] = {**room, **seen, "result": result, "home": home,
                        "condarc": condarc.read_text(encoding="utf-8")
                        if condarc.exists() else None,
                        "conda_calls": calls(room["log"]),
                        "report_text": room["report"].read_text(encoding="utf-8")
                        if room["report"].exists() else None}
    return _days["day"]


@pytest.fixture
def proved_once(first_day, monkeypatch):
    """onboard's torch check and its verify answer with what the first day's real ones found,
    on this same interpreter: the facts about torch, then the trained network's proof."""
    from cnnsetup.machine import facts as facts_module
    from cnnsetup.machine import verify as verify_module

    assert "verified" in first_day, first_day["result"].output  # the day reached its proof

    def run_verify(options, **kwargs):
        assert options == verify_module.VerifyOptions()  # what onboard asks for, every time
        return first_day["verified"]

    monkeypatch.setattr(verify_module, "run_verify", run_verify)
    monkeypatch.setattr(facts_module, "collect", lambda *args, **kwargs: first_day["torch_facts"])
    return first_day["verified"]


def test_onboard_end_to_end_switches_verifies_and_writes_the_report(first_day):
    result = first_day["result"]
    assert result.exit_code == 0, result.output
    for step in ("Step 1/4", "Step 2/4", "Step 3/4", "Step 4/4"):
        assert step in result.stdout
    assert "https://mirror.nju.edu.cn/anaconda/pkgs/main" in first_day["condarc"]
    assert ["clean", "-i", "-y", "--json"] in first_day["conda_calls"]
    # The channel URLs conda answered with after the switch, one per line.
    urls = result.stdout.split("Channel URLs conda uses now (conda info --json):")[1]
    assert "    https://mirror.nju.edu.cn/anaconda/pkgs/main/" in urls.split("Step 2/4")[0]
    report = json.loads(first_day["report_text"])
    assert report["kind"] == "onboard" and report["ok"] is True
    assert report["mirror"] == {"conda": "nju", "pip": "nju"}
    assert [s["name"] for s in report["onboard"]["steps"]] == ["mirror", "torch", "verify", "report"]
    assert report["onboard"]["steps"][0]["status"] == "done"
    assert report["training"][0]["val_accuracy"] >= 0.99
    assert first_day["verified"].ok and first_day["verified"].training  # trained here, for real
    assert str(first_day["report"]) in result.stdout


def test_the_trained_report_reaches_the_class_table_under_its_student(first_day, tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "chen.json").write_text(first_day["report_text"], encoding="utf-8")
    # Someone else on the same lab account, without a name: a machine of its own.
    written = json.loads(first_day["report_text"])
    keys = list(written)
    assert written["student"] == "陈七 2023011234" and keys[keys.index("user") + 1] == "student"
    rh.write_report(folder, "other.json", rh.info_only(host=written["host"], user=written["user"]))
    done = run_cnnsetup("report", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    machines = json.loads(done.stdout)["machines"]
    assert [(m["student"], m["state"]) for m in machines] == [
        ("陈七 2023011234", "pass"), (None, "untested")]
    assert machines[0]["devices_trained"] == ["cpu"] and machines[0]["val_accuracy"] >= 0.9
    text = run_cnnsetup("report", str(folder), env={"NO_COLOR": "1"}).stdout
    assert "1 pass, 0 fail, 1 untested" in text
    assert any(line.startswith("陈七 2023011234  ") for line in text.splitlines())


def test_an_interrupted_onboard_resumes_without_redoing_the_mirror(invoke, classroom, monkeypatch,
                                                                   proved_once):
    real_torch_step = onboard_module._torch_step

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(onboard_module, "_torch_step", interrupted)
    result = invoke("onboard", "--yes", "--mirror", "sjtu", "--report", str(classroom["report"]))
    assert result.exit_code == 130
    assert result.stderr.startswith("\n")  # the line after the terminal's ^C
    assert "Finished: mirror (done)." in result.stderr
    assert "Run `cnnsetup onboard` again to continue" in result.stderr
    condarc = classroom["home"] / ".condarc"
    assert "mirror.sjtu.edu.cn" in condarc.read_text(encoding="utf-8")  # whole and switched
    assert condarc_file.load_backup(condarc) is not None
    assert not classroom["report"].exists()
    cleans = [c for c in calls(classroom["log"]) if c[0] == "clean"]

    monkeypatch.setattr(onboard_module, "_torch_step", real_torch_step)
    result = invoke("onboard", "--yes", "--mirror", "sjtu", "--report", str(classroom["report"]))
    assert result.exit_code == 0, result.output
    assert "Already done" in result.stdout
    assert [c for c in calls(classroom["log"]) if c[0] == "clean"] == cleans  # not again
    report = json.loads(classroom["report"].read_text(encoding="utf-8"))
    assert report["onboard"]["steps"][0]["status"] == "already-done"


def test_without_yes_and_without_a_terminal_nothing_is_written(invoke, classroom, proved_once):
    result = invoke("onboard", "--mirror", "tsinghua", "--report", str(classroom["report"]))
    assert "--yes" in result.stdout
    assert "+  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main" in result.stdout  # would
    assert not (classroom["home"] / ".condarc").exists()
    report = json.loads(classroom["report"].read_text(encoding="utf-8"))
    assert report["onboard"]["steps"][0]["status"] == "skipped"


BLOG_CONDARC = """\
channels:
  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main/
  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/cloud/conda-forge/
  - defaults
show_channel_urls: true
"""


def test_no_mirror_answering_is_a_warning_in_the_summary_and_the_report(
        invoke, classroom, monkeypatch, proved_once):
    targets = {name: f"{classroom['base']}/missing/{name}" for name in classroom["mirrors"]}
    monkeypatch.setattr(speedtest, "default_targets", lambda mirrors=None: dict(targets))
    condarc = classroom["home"] / ".condarc"
    condarc.write_text(BLOG_CONDARC, encoding="utf-8")
    result = invoke("onboard", "--yes", "--student", "Li Lei", "--report", str(classroom["report"]))
    assert result.exit_code == 0, result.output
    summary = result.stdout.split("Summary")[1]
    assert "WARN  mirror" in summary and "No mirror answered" not in summary.split("WARN")[0]
    assert summary.count("no mirror answered") == 1, summary  # on its step's line, not twice
    assert "verify passed, with the warnings above" in summary
    assert condarc.read_text(encoding="utf-8") == BLOG_CONDARC
    report = json.loads(classroom["report"].read_text(encoding="utf-8"))
    assert report["student"] == "Li Lei"
    assert report["onboard"]["steps"][0]["status"] == "warning"
    warned = [c for c in report["checks"] if c["id"] == "onboard.no_mirror"]
    assert warned and warned[0]["status"] == "warn" and warned[0]["fix"] == "cnnsetup mirror test"


def test_an_unknown_mirror_is_a_usage_error(invoke):
    result = invoke("onboard", "--mirror", "nowhere")
    assert result.exit_code == 2
    assert "tsinghua" in result.stderr


def test_a_student_that_can_never_be_a_name_is_a_usage_error_before_anything_runs(invoke, tmp_path):
    result = invoke("onboard", "--yes", "--student", "x" * 200,
                    "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 2
    assert "--student" in result.stderr and "at most 100 characters" in result.stderr
    assert "Step 1/4" not in result.stdout and not (tmp_path / "r.json").exists()


def test_a_torch_that_fails_to_import_is_named_with_its_fix_and_fails(tmp_path):
    fake = write_fake_torch(tmp_path / "fake",
                            body="raise OSError('[WinError 126] fbgemm.dll could not be found')\n")
    report = tmp_path / "r.json"
    done = run_cnnsetup("onboard", "--yes", "--mirror", "tsinghua", "--report", str(report),
                        env={"PYTHONPATH": f"{fake}:{REPO_ROOT}"})
    assert done.returncode == 1
    assert "fits this machine" not in done.stdout
    steps = json.loads(report.read_text(encoding="utf-8"))["onboard"]["steps"]
    assert steps[1]["name"] == "torch" and steps[1]["status"] == "failed"


def test_torch_missing_prints_the_install_command(tmp_path, monkeypatch, invoke, classroom,
                                                  proved_once):
    from tests.machine_helpers import pretend_torch_missing

    pretend_torch_missing(monkeypatch)
    result = invoke("onboard", "--yes", "--mirror", "tsinghua", "--report", str(classroom["report"]))
    assert f"{shlex.quote(sys.executable)} -m pip install" in result.stdout  # the full path
    assert "cnnsetup onboard --install-torch" in result.stdout
    steps = json.loads(classroom["report"].read_text(encoding="utf-8"))["onboard"]["steps"]
    assert steps[1]["status"] == "skipped"


def test_install_commands_run_in_this_interpreter():
    argv = onboard_module.install_argv(
        'python -m pip install "torch<2.8" --index-url https://download.pytorch.org/whl/cu118',
        python="/opt/py/bin/python3")
    assert argv == ["/opt/py/bin/python3", "-m", "pip", "install", "torch<2.8", "--index-url",
                    "https://download.pytorch.org/whl/cu118"]


def test_default_report_name_holds_the_host_and_date():
    name = onboard_module.default_report_name({"host": "lab-pc 07"})
    assert name.startswith("cnnsetup-lab-pc-07-") and name.endswith(".json")


def test_miniconda_comes_from_the_mirror_archive():
    from cnnsetup.mirror import registry

    assert onboard_module.miniconda_url(registry.get("tsinghua"), "win32") == (
        "https://mirrors.tuna.tsinghua.edu.cn/anaconda/miniconda/Miniconda3-latest-Windows-x86_64.exe")
    assert onboard_module.miniconda_url(registry.get("ustc"), "linux").startswith(
        "https://repo.anaconda.com/miniconda/")


def test_a_broken_condarc_fails_the_mirror_step_and_the_day_goes_on(invoke, classroom,
                                                                    proved_once):
    condarc = classroom["home"] / ".condarc"
    condarc.write_text("channels: defaults\n", encoding="utf-8")
    result = invoke("onboard", "--yes", "--mirror", "tsinghua", "--report", str(classroom["report"]))
    assert result.exit_code == 1
    assert "Step 4/4" in result.stdout
    assert condarc.read_text(encoding="utf-8") == "channels: defaults\n"
    steps = json.loads(classroom["report"].read_text(encoding="utf-8"))["onboard"]["steps"]
    assert steps[0]["status"] == "failed" and steps[2]["name"] == "verify"


def test_pip_is_not_changed_without_asking_even_when_conda_already_uses_the_mirror(
        invoke, classroom, proved_once):
    from cnnsetup.mirror import pip
    from cnnsetup.mirror.switch import switch
    from cnnsetup.mirror import registry

    switch(registry.get("tsinghua"), classroom["home"] / ".condarc")
    result = invoke("onboard", "--mirror", "tsinghua", "--report", str(classroom["report"]))
    assert "--yes" in result.stdout
    assert pip.get_index_url() is None

"""Every real-world .condarc in tests/data/corpus/condarc (INDEX.tsv says where each came from and
whether conda 26.7.1 accepts it), through every mirror:

- a file conda rejects (or cannot scan) is refused, untouched, with its line;
- every other file: the minimal-edit rule (each key whose value the switch leaves alone keeps its
  bytes, comments and `#!final` / `#!top` markers stay on their key), idempotent, A -> B -> A
  exact, restore byte-exact;
- the switched files are read by REAL conda (CNNSETUP_TEST_CONDA, else `conda` on the PATH the
  tests started with, else skipped), in one process for all of them: conda accepts each and sends
  defaults, conda-forge and pytorch to the mirror, unless cnnsetup said why not.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cnnsetup.errors import CnnsetupError
from cnnsetup.mirror import registry, yaml_io
from cnnsetup.mirror.switch import make_plan, restore, switch

CORPUS = Path(__file__).resolve().parent / "data" / "corpus" / "condarc"
REAL_PATH = os.environ.get("PATH", "")  # before the fixtures replace it


def _index() -> dict[str, dict]:
    rows = (CORPUS / "INDEX.tsv").read_text(encoding="utf-8").splitlines()
    header = rows[0].split("\t")
    return {row.split("\t")[0]: dict(zip(header, row.split("\t"))) for row in rows[1:]}


INDEX = _index()
# conda ignores a file it cannot scan (a tab, ...) with a warning: cnnsetup refuses to edit it.
CANNOT_SCAN = {i for i, row in INDEX.items() if "yaml-error" in row["traits"]}
REJECTED = {i for i, row in INDEX.items() if row["conda"] != "ok"} | CANNOT_SCAN
ACCEPTED = sorted(set(INDEX) - REJECTED)
MIRRORS = [m.name for m in registry.MIRRORS]
# Known gaps in A -> B -> A exactness (the data and every untouched key still come back):
INEXACT = {
    "077": "spaces on blank lines inside a key cnnsetup rewrites are not kept",
    "107": "a file whose every key is indented by one space: nested lists are re-indented",
}


def test_the_corpus_is_all_here():
    files = sorted(p.stem for p in CORPUS.glob("*.condarc"))
    assert files == sorted(INDEX) and len(files) >= 100
    assert len(REJECTED) >= 5


@pytest.mark.parametrize("file_id", sorted(REJECTED))
def test_a_file_conda_rejects_is_refused_untouched_with_its_line(file_id, tmp_path):
    condarc = tmp_path / "user" / ".condarc"
    condarc.parent.mkdir()
    original = (CORPUS / f"{file_id}.condarc").read_bytes()
    condarc.write_bytes(original)
    for name in ("tsinghua", "official"):
        with pytest.raises(CnnsetupError) as refused:
            switch(registry.get(name), condarc)
        message = refused.value.message
        if "non-map" not in INDEX[file_id]["traits"]:  # a file that is not a mapping has no line
            assert "line " in message, message
        assert condarc.read_bytes() == original
    assert sorted(p.name for p in condarc.parent.iterdir()) == [".condarc"]


# The checks below read the same texts many times over (every file's original for each of the
# seven mirrors, A's switched bytes for B and back): each text is parsed once. The results are
# only read, never changed.

@functools.lru_cache(maxsize=4)  # _values and _pieces of one text share its parse
def _document(text: str):
    return yaml_io.load(text, source="")


@functools.lru_cache(maxsize=None)
def _values(text: str) -> dict:
    """The text's settings as plain Python (CRLF read as LF)."""
    return yaml_io.plain(_document(text.replace("\r\n", "\n")))


@functools.lru_cache(maxsize=None)
def _pieces(text: str) -> dict[str, str]:
    """Each top-level key's lines (up to the next key), by the positions ruamel.yaml reports."""
    document = _document(text)
    lines = text.splitlines(keepends=True)
    rows = [document.lc.key(k)[0] for k in document] + [len(lines)]
    return {str(k): "".join(lines[rows[i]:rows[i + 1]]) for i, k in enumerate(document)}


@functools.lru_cache(maxsize=None)
def _markers(text: str) -> dict[str, list[str]]:
    """The conda markers (`#!final`, `#!top`, `#!bottom`) under each top-level key."""
    return {key: [m for m in ("#!final", "#!top", "#!bottom") for _ in range(piece.count(m))]
            for key, piece in _pieces(text).items()}


_PLANS: dict = {}


def _plan(text: str, mirror: str, tmp_path: Path, windows: bool = False):
    """make_plan for `text` in a real file. A plan depends only on the bytes, the mirror and
    the platform: one computed for an earlier test (A's switch of a file, which the A -> B -> A
    pairs and the real conda check need again) is reused, not computed again."""
    key = (text, mirror, windows)
    if key not in _PLANS:
        path = tmp_path / "plan" / ".condarc"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
        _PLANS[key] = make_plan(registry.get(mirror), path,
                                platform="win32" if windows else "linux")
    return _PLANS[key]


def _read(file_id: str) -> str:
    return (CORPUS / f"{file_id}.condarc").read_bytes().decode("utf-8")


def _own_lines(piece: str) -> str:
    """A key's own lines: its piece less the comment and blank lines after its value (those
    describe the next key, and go with it when a key is put in between)."""
    lines = piece.splitlines(keepends=True)
    while lines and (not lines[-1].strip() or lines[-1].strip().startswith("#")):
        lines.pop()
    return "".join(lines)


def _check_minimal(original: str, new_text: str, label) -> None:
    old_doc = _values(original)
    new = _values(new_text)
    new_pieces = _pieces(new_text)
    new_markers = _markers(new_text)
    for key, piece in _pieces(original).items():
        if key in new and new[key] == old_doc[key]:
            # Same value: the same bytes, and the same conda markers. (The last line of a file
            # without a final newline gets one when a key is added after it.)
            if new_pieces[key] + "\n" == piece and not new_text.endswith("\n"):
                continue  # now the last line of a file that keeps its no-final-newline style
            if not piece.endswith("\n") and new_pieces[key] == piece + "\n":
                continue
            assert _own_lines(new_pieces[key]) == _own_lines(piece), (label, key)
            assert new_markers[key] == _markers(original)[key], (label, key)
    comments = [ln.strip() for ln in original.splitlines() if ln.strip().startswith("#")]
    assert sorted(comments) == sorted(
        ln.strip() for ln in new_text.splitlines() if ln.strip().startswith("#")), label
    assert ("\r\n" in new_text) == ("\r\n" in original), label


def _removes(a_text: str, b_text: str) -> bool:
    """Whether the switch from A to B removes a key or a custom_channels entry of A (B cannot
    remember where it stood, so going back to A puts it where the template does), or replaces
    a URL of the user's own server that A had left alone."""
    a = _values(a_text)
    b = _values(b_text)
    custom = a.get("custom_channels") or {}
    unknown = [u for u in list(a.get("default_channels") or []) + list(custom.values())
               if not registry.mirror_of_url(str(u))]  # the user's own servers, replaced by B
    return bool(set(a) - set(b)) or bool(set(custom) - set(b.get("custom_channels") or {})) \
        or bool(unknown)


@pytest.mark.parametrize("file_id", ACCEPTED)
def test_every_mirror_changes_only_what_it_must(file_id, tmp_path):
    original = _read(file_id)
    for position, mirror in enumerate(MIRRORS):
        plan = _plan(original, mirror, tmp_path)
        new_text = plan.new_bytes.decode(plan.current.encoding)
        _check_minimal(original, new_text, mirror)
        # Idempotent: the same mirror again changes no byte.
        assert not _plan(new_text, mirror, tmp_path).changed, mirror
        if position != int(file_id) % (len(MIRRORS) - 1):  # A -> B -> A: one pair per file
            continue
        other = MIRRORS[(position + 1 + int(file_id) // 7) % len(MIRRORS)]
        b_text = _plan(new_text, other, tmp_path).new_bytes.decode(plan.current.encoding)
        _check_minimal(new_text, b_text, (mirror, other))
        back = _plan(b_text, mirror, tmp_path).new_bytes  # going back is always possible
        if not _removes(new_text, b_text) and file_id not in INEXACT:
            assert back == plan.new_bytes, (mirror, other)
            _check_minimal(new_text, back.decode(plan.current.encoding), (mirror, other, mirror))


@pytest.mark.parametrize("pair", [("tsinghua", "bfsu"), ("bfsu", "nju"), ("aliyun", "sjtu"),
                                  ("ustc", "tsinghua"), ("nju", "official"), ("sjtu", "ustc")])
def test_a_then_b_then_a_is_exact_when_b_removes_nothing_of_a(pair, tmp_path):
    """Over the whole corpus: A -> B -> A gives A's bytes whenever B keeps every key and
    custom_channels entry of A (else going back puts them where the template does)."""
    a, b = pair
    exact = 0
    for file_id in ACCEPTED:
        a_text = _plan(_read(file_id), a, tmp_path).new_bytes
        encoding = "utf-8"
        b_text = _plan(a_text.decode(encoding), b, tmp_path).new_bytes.decode(encoding)
        back = _plan(b_text, a, tmp_path).new_bytes  # going back is always possible
        if not _removes(a_text.decode(encoding), b_text) and file_id not in INEXACT:
            assert back == a_text, (file_id, a, b)
            exact += 1
    if b in ("bfsu", "tsinghua", "nju"):  # the others remove an entry from every file
        assert exact > len(ACCEPTED) // 2


@pytest.mark.parametrize("file_id", ACCEPTED)
def test_restore_after_switches_gives_back_the_exact_bytes(file_id, tmp_path):
    condarc = tmp_path / ".condarc"
    original = (CORPUS / f"{file_id}.condarc").read_bytes()
    condarc.write_bytes(original)
    first = MIRRORS[int(file_id) % len(MIRRORS)]
    second = MIRRORS[(int(file_id) + 3) % len(MIRRORS)]
    switch(registry.get(first), condarc, platform="win32")
    switch(registry.get(second), condarc)
    restore(condarc)
    assert condarc.read_bytes() == original


# --- real conda -------------------------------------------------------------------------------

def _real_conda() -> tuple[str | None, str]:
    path = os.environ.get("CNNSETUP_TEST_CONDA")
    if path:
        return path, "CNNSETUP_TEST_CONDA"
    found = shutil.which("conda", path=REAL_PATH)
    return found, "PATH"


@pytest.fixture(scope="module")
def conda_python(tmp_path_factory):
    """(python, folder holding the `conda` package) of the real conda, from `conda info --json`."""
    conda, _how = _real_conda()
    if not conda:
        pytest.skip("no real conda: set CNNSETUP_TEST_CONDA or put conda on PATH")
    home = tmp_path_factory.mktemp("conda-home")
    done = subprocess.run([conda, "info", "--json"], capture_output=True, text=True, timeout=120,
                          env={"HOME": str(home), "PATH": REAL_PATH, "LANG": "C.UTF-8"})
    info = json.loads(done.stdout)
    return info["sys.executable"], str(Path(info["conda_location"]).parent), home


def _expected(mirror: registry.Mirror, channel: str) -> str | None:
    if channel == "defaults":
        return None
    return (mirror.channel_url(channel) if not mirror.is_official
            else f"{registry.UPSTREAM_ALIAS}/{channel}") or f"{registry.UPSTREAM_ALIAS}/{channel}"


def test_real_conda_reads_every_switched_file_and_uses_the_mirror(conda_python, tmp_path):
    python, package_parent, home = conda_python
    cases = {}
    for file_id in ACCEPTED:  # every file to tsinghua, and to one other mirror each
        for mirror in {"tsinghua", MIRRORS[int(file_id) % len(MIRRORS)]}:
            plan = _plan(_read(file_id), mirror, tmp_path)
            target = tmp_path / "switched" / f"{file_id}-{mirror}" / ".condarc"
            target.parent.mkdir(parents=True)
            target.write_bytes(plan.new_bytes)
            cases[str(target)] = (file_id, registry.get(mirror), plan)
    script = Path(__file__).resolve().parent / "conda_read_many.py"
    done = subprocess.run([python, "-I", str(script), package_parent, *cases], capture_output=True,
                          text=True, timeout=600,
                          env={"HOME": str(home), "PATH": REAL_PATH, "LANG": "C.UTF-8"})
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(done.stdout)
    problems = []
    for path, (file_id, mirror, plan) in cases.items():
        answer = answers[path]
        if not answer["ok"]:
            problems.append(f"{file_id} {mirror.name}: conda refuses it: {answer['error']}")
            continue
        said = " ".join(plan.warnings + plan.notes)
        wanted_defaults = mirror.default_channels(windows=False) or [
            f"{registry.UPSTREAM_DEFAULTS}/main", f"{registry.UPSTREAM_DEFAULTS}/r"]
        if answer["defaults"] != wanted_defaults and "default_channels" not in said \
                and "custom_multichannels" not in said:
            problems.append(f"{file_id} {mirror.name}: defaults -> {answer['defaults']}")
        for channel in ("conda-forge", "pytorch"):
            if answer[channel] != _expected(mirror, channel) and channel not in said \
                    and channel not in _(mirror.note):
                problems.append(f"{file_id} {mirror.name}: {channel} -> {answer[channel]}")
    assert not problems, "\n".join(problems)


def _(text: str) -> str:
    from cnnsetup.i18n import _ as translate

    return translate(text) if text else ""

"""How long `cnnsetup mirror tsinghua --dry-run --no-clean --offline` takes, against the bare cost
of importing what it needs (`python -c "import click, ruamel.yaml"`). Goal: ratio <= 2.0. The
live channel check is left out here (it needs the network); bench_mirror_live_check.py measures
what it adds, over loopback.

Also: how long a switch (in this process, imports done) takes on large files: the largest real
.condarc collected (22 kB), one at cnnsetup's limit (MAX_CONDARC_BYTES), and 1 MB / 5 MB files,
which must be refused (or switched) in under 1 s.

And the planning itself on real files: `make_plan` (read, parse, edit, render, check) for every
.condarc of the test corpus (tests/data/corpus/condarc, ~100 files of 0.1-22 kB) to three
mirrors, in this process: milliseconds per plan (median of 5 passes) and YAML parses per plan.
Parsing with ruamel.yaml is most of a plan's time, so parses per plan is the figure that does
not depend on how busy the machine is.

Run: python benchmarks/bench_mirror_switch.py          (everything)
     python benchmarks/bench_mirror_switch.py corpus   (the planning figures only)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import PYTHON, cnnsetup_env, compare, report  # noqa: E402


def large_files() -> bool:
    """Print the time a switch takes (or its refusal) by file size; True when every file over
    the limit is answered in under 1 s."""
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from cnnsetup.errors import CnnsetupError
    from cnnsetup.mirror import condarc_file, registry
    from cnnsetup.mirror.switch import switch

    ok = True
    entry = "  - https://example.org/channel-{n:07d}\n"
    for label, size in (("22 kB", 22_000), ("limit", condarc_file.MAX_CONDARC_BYTES),
                        ("1 MB", 1_000_000), ("5 MB", 5_000_000)):
        with tempfile.TemporaryDirectory() as home:
            path = Path(home) / ".condarc"
            lines, n = ["channels:\n"], 0
            total = len(lines[0])
            while total + len(entry.format(n=n)) <= size:
                lines.append(entry.format(n=n))
                total += len(lines[-1])
                n += 1
            path.write_text("".join(lines), encoding="utf-8")
            started = time.perf_counter()
            try:
                switch(registry.get("tsinghua"), path)
                outcome = "switched"
            except CnnsetupError as error:
                outcome = "refused: " + error.message.split(";")[0]
            seconds = time.perf_counter() - started
        if size > condarc_file.MAX_CONDARC_BYTES and seconds >= 1.0:
            ok = False
        print(f"{label:>6} ({total:>9} bytes): "
              f"{seconds:6.3f} s  {outcome}")
    return ok


def corpus_plans(passes: int = 5) -> None:
    """Print the median time per make_plan over the corpus, and parses per plan."""
    import statistics
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from cnnsetup.errors import CnnsetupError
    from cnnsetup.mirror import registry, yaml_io
    from cnnsetup.mirror.switch import make_plan

    corpus = sorted((Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"
                     / "condarc").glob("*.condarc"))
    parses = [0]
    load = yaml_io.load

    def counted(*args, **kwargs):
        parses[0] += 1
        return load(*args, **kwargs)

    with tempfile.TemporaryDirectory() as folder:
        files = []
        for source in corpus:
            path = Path(folder) / source.stem / ".condarc"
            path.parent.mkdir()
            path.write_bytes(source.read_bytes())
            files.append(path)
        mirrors = [registry.get(name) for name in ("tsinghua", "aliyun", "official")]

        def one_pass() -> int:
            plans = 0
            for path in files:
                for mirror in mirrors:
                    try:
                        make_plan(mirror, path, platform="linux")
                    except CnnsetupError:
                        pass  # a file conda refuses: refused, as it should be
                    plans += 1
            return plans

        one_pass()  # warm-up
        yaml_io.load = counted
        try:
            plans = one_pass()
        finally:
            yaml_io.load = load
        times = []
        for _ in range(passes):
            started = time.perf_counter()
            one_pass()
            times.append((time.perf_counter() - started) / plans)
    print(f"make_plan over the corpus ({len(files)} files x {len(mirrors)} mirrors = {plans} "
          f"plans): {statistics.median(times) * 1000:.1f} ms per plan (median of {passes}), "
          f"{parses[0] / plans:.2f} YAML parses per plan")


def main() -> int:
    if sys.argv[1:] == ["corpus"]:
        corpus_plans()
        return 0
    corpus_plans()
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / ".condarc").write_text(
            "# a typical student file\nchannels:\n  - defaults\nshow_channel_urls: true\n",
            encoding="utf-8",
        )
        env = cnnsetup_env(Path(home))
        subject, baseline = compare(
            [PYTHON, "-m", "cnnsetup", "mirror", "tsinghua", "--dry-run", "--no-clean", "--offline"],
            [PYTHON, "-c", "import click, ruamel.yaml"],
            env=env,
        )
    ok = report("cnnsetup mirror tsinghua --dry-run --no-clean --offline", subject,
                'python -c "import click, ruamel.yaml"', baseline, goal=2.0)
    ok = large_files() and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

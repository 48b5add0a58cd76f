"""How long `cnnsetup info` takes next to `python -m torch.utils.collect_env` (whole processes,
run alternately so that both see the same machine load), with two Jupyter kernels to probe: one
whose Python imports the same torch from another interpreter, one without torch. Goal: ratio at
most 0.8.

    python benchmarks/bench_info.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.8

COMMANDS = {
    "cnnsetup info": [sys.executable, "-m", "cnnsetup", "info", "--json"],
    "collect_env": [sys.executable, "-m", "torch.utils.collect_env"],
}


def timed(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   timeout=600, check=False)
    return time.perf_counter() - started


def kernels(root: Path) -> Path:
    """A JUPYTER_PATH folder with two kernels, each on its own interpreter (venvs of this one):
    "with-torch" sees this Python's site-packages (so it imports the same torch), "no-torch"
    sees nothing."""
    data = root / "jupyter"
    for name, sites in (("with-torch", site.getsitepackages()), ("no-torch", [])):
        env = root / name
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
        python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        if sites:
            found = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
            Path(found, "bench-parent.pth").write_text("\n".join(sites) + "\n")
        folder = data / "kernels" / name
        folder.mkdir(parents=True)
        (folder / "kernel.json").write_text(json.dumps({
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": name, "language": "python"}))
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    scratch = tempfile.TemporaryDirectory(prefix="bench-info-")
    env["JUPYTER_PATH"] = str(kernels(Path(scratch.name)))
    probe = subprocess.run(COMMANDS["cnnsetup info"], capture_output=True, text=True, env=env)
    found = {k["name"]: k.get("torch") for k in json.loads(probe.stdout).get("jupyter_kernels", [])}
    print(f"kernels probed: {found}")
    for args in COMMANDS.values():  # warm the file cache for both
        timed(args, env)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(options.rounds):
        for name, args in COMMANDS.items():
            times[name].append(timed(args, env))
    for name, values in times.items():
        print(f"{name:14s} median {statistics.median(values):6.3f} s   "
              f"min {min(values):6.3f} s   max {max(values):6.3f} s   ({len(values)} runs)")
    ratio = statistics.median(times["cnnsetup info"]) / statistics.median(times["collect_env"])
    best = min(times["cnnsetup info"]) / min(times["collect_env"])
    verdict = "ok" if ratio <= GOAL else "over the goal"
    print(f"ratio (median) {ratio:.2f}   ratio (best) {best:.2f}   goal <= {GOAL:.1f}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

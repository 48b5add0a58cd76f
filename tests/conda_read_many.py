"""Run by REAL conda's own Python (not cnnsetup's): load each given .condarc alone, as conda does,
and print one JSON object: path -> {"ok", "error", "defaults", "conda-forge", "pytorch"}.

Usage: CONDA_PYTHON conda_read_many.py CONDA_PACKAGE_PARENT PATH...
One process reads every file (conda's start-up costs about a second; a call per file would not
fit the test suite's time). Each file is loaded exactly as conda loads ~/.condarc: parsed,
validated (`context.validate_all()`), and the channels resolved by conda's own Channel model.
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

from conda.base.context import context, reset_context  # noqa: E402
from conda.models.channel import Channel  # noqa: E402

out = {}
for path in sys.argv[2:]:
    try:
        reset_context(search_path=(path,), argparse_args=None)
        context.validate_all()
        if path not in [str(p) for p in context.raw_data]:
            raise RuntimeError("conda did not load the file")
        defaults = context.custom_multichannels["defaults"]
        out[path] = {
            "ok": True,
            "defaults": [c.base_url for c in defaults],
            "conda-forge": Channel("conda-forge").base_url,
            "pytorch": Channel("pytorch").base_url,
        }
    except BaseException as error:  # noqa: BLE001 - every failure is a result here
        out[path] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
print(json.dumps(out))

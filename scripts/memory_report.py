"""Peak memory of building (and summarising) the seed networks, measured.

    python scripts/memory_report.py build      # construction: tracemalloc peak vs parameter bytes
    python scripts/memory_report.py rss        # max RSS of `nnlite summary MODEL` (/usr/bin/time -v)

Construction is measured in a fresh process per model: tracemalloc (which
NumPy reports its allocations to) from before the build to after it, and the
process's max RSS minus that of the same process importing nnlite alone.
"""
import json
import subprocess
import sys

MODELS = {
    "dictnet": "from nnlite.models import jaderberg as m; m.dictnet()",
    "charnet": "from nnlite.models import jaderberg as m; m.charnet()",
    "crnn (seed)": "from nnlite.models import crnn as m; m.crnn()",
    "crnn (compact)": ("from nnlite.models import crnn as m, crnn_train as t; "
                       "m.crnn(**t.SIZES['compact'])"),
}

def build_report():
    rows = []
    for name, code in MODELS.items():
        statement = code.rsplit("; ", 1)
        body = statement[0] + "; model = " + statement[1]
        child = build_child_source(body)
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                             check=True).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        figures["model"] = name
        rows.append(figures)
        print(f"{name:15s} params {figures['params'] / 2**20:9.1f} MiB  "
              f"build peak (tracemalloc) {figures['traced_peak'] / 2**20:9.1f} MiB "
              f"= {figures['traced_peak'] / max(figures['params'], 1):.2f}x  "
              f"max RSS {figures['rss_peak'] / 2**20:8.1f} MiB "
              f"(import alone {figures['rss_before'] / 2**20:.1f} MiB)", flush=True)
    return rows


def build_child_source(body):
    return f"""
import json, resource, tracemalloc
import numpy as np
import nnlite
from nnlite.models import jaderberg, crnn, crnn_train
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
{body.replace('; ', chr(10))}
current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
params = sum(int(p.data.nbytes) for p in model.parameters())
print(json.dumps(dict(params=params, traced_peak=peak, rss_peak=rss, rss_before=base_rss)))
"""


def rss_report(names=("dictnet", "charnet", "crnn")):
    for name in names:
        done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "nnlite.cli",
                               "summary", name], capture_output=True, text=True)
        rss = next(int(line.split(":")[1]) for line in done.stderr.splitlines()
                   if "Maximum resident set size" in line)
        verdict = [line for line in done.stdout.splitlines() if line.startswith(("Verdict",
                                                                                 "Required"))]
        print(f"nnlite summary {name:10s} max RSS {rss / 1024:8.1f} MiB  {verdict}", flush=True)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "build"
    if what == "build":
        build_report()
    else:
        rss_report()

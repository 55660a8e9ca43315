"""`python -m bench` stays runnable: one tiny CPU run through the CLI and the JSON."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is a top-level package of the repository
    sys.path.insert(0, str(ROOT))


def test_bench_cpu_smoke(tmp_path, capsys):
    from bench.__main__ import main
    out_json = tmp_path / "bench.json"
    assert main(["--device", "cpu", "--filter", "992x63", "--repeat", "2", "--warmup", "0",
                 "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    assert "device: cpu" in table and "nnlite" in table and "numpy-ref" in table
    results = json.loads(out_json.read_text())["results"]
    assert {r["impl"] for r in results} >= {"nnlite", "numpy-ref"}
    assert all(r["ratio_to_nnlite"] > 0 and r["median_ms"] > 0 for r in results)
    # Other families register CRNN-shaped cases too; softmax's must be among them.
    assert {r["case"] for r in results} >= {"softmax fwd", "softmax fwd+bwd",
                                            "log_softmax fwd", "log_softmax fwd+bwd"}


def test_long_cases_run_only_when_asked():
    # Whole networks and the large seed layers take minutes on a CPU: a plain
    # run leaves them out, --all or a --filter that names them brings them in.
    from bench import harness
    plain = {(c.name, c.shape) for c in harness.build_cases(["cpu"])}
    everything = harness.build_cases(["cpu"], include_long=True)
    long_cases = {(c.name, c.shape) for c in everything if c.long}
    assert long_cases and not plain & long_cases
    assert plain | long_cases == {(c.name, c.shape) for c in everything}
    named = harness.build_cases(["cpu"], "model train step")
    assert [c.name for c in named] == ["model train step"] and named[0].long

"""`python -m bench` stays runnable: one tiny CPU run through the CLI and the JSON."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

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
    assert {c.name for c in named} == {"model train step"} and all(c.long for c in named)
    assert {c.shape for c in named} == {"seed CRNN N=32 Adam float32",
                                        "compact CRNN N=32 Adam float32",
                                        "attention reader N=32 Adam float32",
                                        "digit sequence N=50 Adam float32"}
    inference = {c.shape for c in harness.build_cases(["cpu"], "model inference")}
    assert inference == {"seed CRNN N=32 float32", "seed CRNN N=1 float32",
                         "compact CRNN N=32 float32", "compact CRNN N=1 float32",
                         "attention reader N=32 float32", "digit sequence N=50 float32"}


def _model_setups():
    from bench.cases import models, models_attention, models_digits
    # (name, setup, both libraries' first training step gives the same loss:
    # no dropout; the seed CRNN's input dropout draws differ)
    return {
        "seed CRNN": (lambda: models._LazySetup("cpu", models._seed_crnn), False),
        "compact CRNN": (lambda: models._LazySetup("cpu", models._compact_crnn), True),
        "attention reader": (lambda: models_attention.ReaderSetup("cpu"), True),
        "digit sequence": (lambda: models_digits.DigitsSetup("cpu"), True),
        "digit sequence reset_after": (
            lambda: models_digits.DigitsSetup("cpu", reset_after=True), True),
    }


def _outputs(name, result):
    from bench.cases.models_attention import both_outputs
    from bench.harness import primary_output
    return primary_output(result) if "CRNN" in name else both_outputs(result)


@pytest.mark.parametrize("name", sorted(_model_setups()))
def test_model_replica_matches_nnlite(name):
    # The model cases time nnlite against a PyTorch replica of the same network
    # with nnlite's weights copied in: its inference output (every output of
    # the network) must agree with nnlite's within the case's tolerance, and
    # with no dropout the first training step's loss (the loss replica) too.
    # A small batch keeps this fast; the bench checks its own batch again.
    pytest.importorskip("torch")
    make, same_first_loss = _model_setups()[name]
    setup = make()
    n = 2
    ours, theirs = _outputs(name, setup.nnlite_infer(n)), _outputs(name, setup.torch_infer(n))
    assert ours.shape == theirs.shape and np.isfinite(ours).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)
    ours, theirs = setup.nnlite_step(n).item(), setup.torch_step(n).item()
    assert np.isfinite(ours) and np.isfinite(theirs)
    if same_first_loss:
        assert ours == pytest.approx(theirs, rel=1e-5)


def test_ratio_is_the_median_of_per_round_ratios():
    # A load change between rounds slows both implementations of that round;
    # the per-round ratio cancels it (here 2.0 every round), where the ratio of
    # the medians (30 / 10 = 3.0) would not.
    from bench.harness import pair_ratio
    assert pair_ratio([20.0, 30.0, 60.0], [10.0, 15.0, 30.0]) == 2.0
    assert pair_ratio([2.0, 9.0, 4.0, 1.0], [1.0, 1.0, 1.0, 1.0]) == 3.0

"""`nnlite compress MODEL CHECKPOINT --out FILE`: verdicts before and after,
a checkpoint that nnlite summary / predict read back, and one-line errors."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import cli, compression
from nnlite.models import jaderberg_train as jt


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    nl.manual_seed(0)
    model = jt.build("dictnet", "compact", num_words=100)  # 3.98M parameters, 15 MiB
    path = tmp_path_factory.mktemp("dictnet") / "dictnet.h5"
    nl.io.save(path, model)
    return path


def test_int8_writes_a_checkpoint_that_fits(checkpoint, tmp_path, capsys):
    out = tmp_path / "int8.h5"
    assert cli.main(["compress", "dictnet", str(checkpoint), "--out", str(out), "--method",
                     "int8", "--budget", "64MiB"]) == 0
    text = capsys.readouterr().out
    assert "before: 3,975,524 parameters, 15.17 MiB of weights; batch-1 inference needs " \
           "15.75 MiB: fits 64.00 MiB" in text
    assert "fc1: 6656 -> 512, dense, int8: 13.00 MiB -> 3.25 MiB" in text
    assert "after: " in text and "4.52 MiB of weights" in text and f"wrote {out}" in text
    assert compression.plan_from_checkpoint(out)["fc1"] == {"kind": "quantized", "rank": None,
                                                            "storage": "int8"}
    assert cli.main(["summary", "dictnet", "--checkpoint", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "fc1         QuantizedLinear" in summary and "Largest layer workspace" in summary


def test_svd_with_given_ranks_and_predict_reads_it(checkpoint, tmp_path, capsys):
    out = tmp_path / "svd.h5"
    assert cli.main(["compress", "dictnet", str(checkpoint), "--out", str(out), "--method",
                     "svd", "--rank", "fc1=64", "--rank", "fc2=32"]) == 0
    assert "fc1: 6656 -> 512, rank 64, float32" in capsys.readouterr().out
    from PIL import Image
    image = tmp_path / "word.png"
    Image.fromarray((np.random.default_rng(0).random((32, 100)) * 255).astype(np.uint8)).save(
        image)
    assert cli.main(["predict", "dictnet", str(out), str(image)]) == 0
    assert capsys.readouterr().out.startswith(f"{image}\t")


def test_a_result_over_budget_is_written_and_exits_1(checkpoint, tmp_path, capsys):
    out = tmp_path / "fp16.h5"
    assert cli.main(["compress", "dictnet", str(checkpoint), "--out", str(out), "--method",
                     "fp16", "--budget", "10MiB"]) == 1
    captured = capsys.readouterr()
    assert "DOES NOT FIT 10.00 MiB" in captured.out and out.exists()
    assert captured.err.startswith("nnlite compress: the compressed dictnet still does not fit")


@pytest.mark.parametrize("argv, message", [
    (["--method", "svd", "--rank", "fc1"], "--rank 'fc1': expected LAYER=RANK"),
    (["--method", "int8", "--rank", "fc1=3"], "--rank is for the svd methods"),
    (["--method", "svd", "--rank", "fc1=600"], "rank 600 for fc1 (6656 -> 512) saves no memory"),
    (["--method", "svd", "--rank", "conv1=3"], "--rank names conv1, not among"),
    (["--budget", "lots"], "--budget: parse_bytes: cannot read 'lots'"),
    (["--method", "svd", "--budget", "1MiB"], "the budget is too small"),
    (["--layers", "fc9"], "no Linear layer named fc9"),
])
def test_bad_requests_are_one_line_errors(checkpoint, tmp_path, capsys, argv, message):
    status = cli.main(["compress", "dictnet", str(checkpoint), "--out",
                       str(tmp_path / "x.h5")] + argv)
    err = capsys.readouterr().err
    assert status in (1, 2) and err.startswith("nnlite compress: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_inputs_are_one_line_errors(checkpoint, tmp_path, capsys):
    for argv, message in [
            (["crnnx", str(checkpoint)], "unknown model 'crnnx'"),
            (["dictnet", str(tmp_path / "none.h5")], "does not exist"),
            (["dictnet", str(checkpoint), "--out", str(tmp_path)], "is a directory")]:
        if "--out" not in argv:
            argv = argv + ["--out", str(tmp_path / "y.h5")]
        assert cli.main(["compress"] + argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("nnlite compress: ") and message in err, err
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    assert cli.main(["compress", "dictnet", str(tmp_path / "junk.h5"), "--out",
                     str(tmp_path / "z.h5")]) == 2
    assert "cannot load" in capsys.readouterr().err


def test_eval_reads_a_compressed_checkpoint(checkpoint, tmp_path, capsys):
    out = tmp_path / "svd8.h5"
    assert cli.main(["compress", "dictnet", str(checkpoint), "--out", str(out), "--method",
                     "svd+int8", "--rank", "fc1=32"]) == 0
    capsys.readouterr()
    assert cli.main(["eval", "dictnet", str(out)]) == 0
    text = capsys.readouterr().out
    assert "word_accuracy: " in text and "loss: " in text

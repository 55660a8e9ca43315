"""`nnlite summary MODEL`: resolution through nnlite.models (registry
monkeypatched with a small model here), options, and bad input."""
import subprocess
import sys

import pytest

from nnlite import cli, models
from nnlite import nn

from small_models import INPUT_SHAPE, ConvLSTMNet


def tiny_mlp():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


@pytest.fixture
def registry(monkeypatch):
    entries = {"convlstm": (ConvLSTMNet, INPUT_SHAPE), "tiny": (tiny_mlp, (3,))}
    monkeypatch.setattr(models, "_REGISTRY", entries)
    return entries


def test_registry_functions(registry):
    assert models.available() == ["convlstm", "tiny"]
    builder, shape = models.get("tiny")
    assert builder is tiny_mlp and shape == (3,)
    with pytest.raises(KeyError, match="unknown model 'nope'; available models: convlstm, "
                                       "tiny"):
        models.get("nope")


def test_summary_prints_the_table(registry, capsys):
    assert cli.main(["summary", "convlstm"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Model: ConvLSTMNet, input (1, 1, 8, 12), inference")
    assert "Total params: 1,797" in out and "Verdict for budget 1.50 GiB: fits" in out
    for layer in ("features.0", "features.3", "rnn", "head"):
        assert f"\n{layer} " in out


def test_batch_train_and_memory_options(registry, capsys):
    assert cli.main(["summary", "convlstm", "--batch", "4", "--train", "--memory",
                     "10KiB"]) == 0
    out = capsys.readouterr().out
    assert "input (4, 1, 8, 12), training" in out
    assert "Gradients: 7.02 KiB" in out
    assert "Parameters + buffers vs budget 10.00 KiB: fit" in out
    assert "Verdict for budget 10.00 KiB: DOES NOT FIT" in out


def test_parameters_over_budget_stay_on_the_meta_device_unless_run(registry, capsys):
    assert cli.main(["summary", "tiny", "--memory", "64"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 26 (104 B) (meta: not allocated)" in out and "DO NOT FIT" in out
    assert "Forward: shapes only" in out and "(1, 2)" in out
    assert cli.main(["summary", "tiny", "--memory", "64", "--run"]) == 0
    out = capsys.readouterr().out
    assert "shapes only" not in out and "meta" not in out and "(1, 2)" in out
    assert cli.main(["summary", "tiny", "--memory", "64", "--no-run"]) == 0
    assert "Forward not run" in capsys.readouterr().out


def test_input_shape_option(registry, capsys):
    assert cli.main(["summary", "convlstm", "--input-shape", "1,8,20"]) == 0
    assert "(1, 10, 5)" in capsys.readouterr().out  # width 20 pools to T = 10


def test_input_the_model_rejects_is_reported_not_a_traceback(registry, capsys):
    assert cli.main(["summary", "convlstm", "--input-shape", "3,8,12"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nnlite summary: convlstm with input (1, 3, 8, 12) failed: ")
    assert "3 channels" in err


def test_list_models(registry, capsys):
    assert cli.main(["summary", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["convlstm", "tiny"]


def test_unknown_model_lists_the_available_ones(registry, capsys):
    assert cli.main(["summary", "resnet"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnet'; available models: convlstm, tiny" in err


def test_real_registry_lists_every_seed_network():
    names = models.available()
    assert names == sorted(names)
    for expected in ("charnet", "dictnet", "crnn", "attention_reader", "digit_sequence",
                     "svhn"):
        assert expected in names
    for name in names:
        builder, shape = models.get(name)
        assert callable(builder) and all(isinstance(s, int) and s > 0 for s in shape)


def test_registry_imports_recipe_modules_only_on_request():
    # A subprocess, because other tests have already imported the recipes here.
    script = ("import sys; from nnlite import models; models.available(); "
              "recipes = ('nnlite.models.crnn_train', 'nnlite.models.jaderberg_train'); "
              "assert not set(recipes) & set(sys.modules), sorted(sys.modules); "
              "assert models.recipe_module('crnn').__name__ == recipes[0]; "
              "assert models.recipe_module('nalu') is sys.modules['nnlite.models.nalu']")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_bad_memory_and_batch(registry, capsys):
    assert cli.main(["summary", "tiny", "--memory", "lots"]) == 2
    assert "parse_bytes: cannot read 'lots'" in capsys.readouterr().err
    assert cli.main(["summary", "tiny", "--batch", "0"]) == 2
    assert "--batch must be a positive int, got 0" in capsys.readouterr().err
    assert cli.main(["summary", "tiny", "--input-shape", "3,x"]) == 2
    assert "--input-shape must be sizes separated by commas" in capsys.readouterr().err


def test_missing_model_name(registry, capsys):
    assert cli.main(["summary"]) == 2
    assert capsys.readouterr().out.split() == ["convlstm", "tiny"]


def test_summary_prints_for_every_registered_model(monkeypatch, capsys):
    import functools
    for name in models.available():
        if name == "dictnet":
            # The full 88,172-word DictNet is 1.96 GB of weights: the table is
            # the same code path with a small lexicon.
            builder, shape = models.get(name)
            monkeypatch.setitem(models._REGISTRY, name,
                                (functools.partial(builder, num_words=50), shape))
        assert cli.main(["summary", name]) == 0, name
        out = capsys.readouterr().out
        builder, _ = models.get(name)
        sized = models.sizes(name)
        if sized is not None:  # described at the size `nnlite train` trains
            builder = functools.partial(sized[2], sized[1])
        total = sum(p.numel() for p in builder().parameters())
        assert f"Total params: {total:,}" in out, name
        assert "Verdict for budget 1.50 GiB" in out, name


def test_summary_describes_the_size_that_train_trains_and_the_seed_on_request(capsys):
    from nnlite.models import crnn_train
    assert models.sizes("crnn")[:2] == (("compact", "seed"), "compact")
    assert models.sizes("nalu") is None
    assert cli.main(["summary", "crnn"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("crnn at size 'compact': the size `nnlite train crnn` trains "
                          "(sizes: compact, seed; choose with --size)\n")
    compact = sum(p.numel() for p in crnn_train.build_sized(size="compact").parameters())
    assert compact == sum(p.numel() for p in crnn_train.training_recipe(
        data="synth", val_size=1, show=0).model.parameters())
    assert f"Total params: {compact:,}" in out
    assert cli.main(["summary", "crnn", "--size", "seed"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("crnn at size 'seed' (sizes")
    assert "Total params: 6,6" in out  # the seed CRNN's 6.6M, as SPECS.md counts it


def test_summary_size_errors(capsys):
    assert cli.main(["summary", "crnn", "--size", "big"]) == 2
    assert "--size 'big': crnn comes in sizes compact, seed" in capsys.readouterr().err
    assert cli.main(["summary", "nalu", "--size", "seed"]) == 2
    assert ("--size: nalu is built and trained at one size (the seed's); --size applies "
            "to charnet, crnn, dictnet") in capsys.readouterr().err


def test_a_closed_pipe_ends_the_command_quietly():
    # `nnlite summary crnn | head -1`: the reader leaves early
    command = [sys.executable, "-m", "nnlite", "summary", "crnn", "--size", "seed"]
    # (here it has gone before the first line: the writer's first flush fails)
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer.stdout.close()
    _, err = writer.communicate(timeout=120)
    assert writer.returncode == 141 and err == b"", err.decode()

"""`nnlite train | eval | predict | visualize` end to end on a toy model
module (tests/toy_recipe.py) registered in place of the real registry."""
import json
import os

import matplotlib.image
import numpy as np
import pytest
from PIL import Image

import nnlite as nl
from nnlite import cli, models

import toy_recipe
from small_models import INPUT_SHAPE, ConvLSTMNet
from training_toys import toy_arrays, toy_model


@pytest.fixture
def registry(monkeypatch):
    entries = {"toy": (toy_recipe.build, (8,)), "bare": (ConvLSTMNet, INPUT_SHAPE)}
    monkeypatch.setattr(models, "_REGISTRY", entries)
    monkeypatch.setattr(toy_recipe, "INTERRUPT_AT", None)
    return entries


def weights(path):
    model = toy_model()
    nl.io.load(path, model)
    return {name: value.numpy() for name, value in model.state_dict().items()}


def test_train_writes_the_run_and_eval_reads_it(registry, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "toy", "--out", str(out), "--steps", "30"]) == 0
    printed = capsys.readouterr().out
    assert "step 30: training loss" in printed and "best accuracy" in printed
    assert sorted(os.listdir(out)) == ["best.h5", "curves.png", "last.h5", "metrics.json"]
    report = json.loads((out / "metrics.json").read_text())
    assert [row["step"] for row in report["train"]] == [5, 10, 15, 20, 25, 30]  # log_every 5
    assert [row["step"] for row in report["eval"]] == [10, 20, 30]  # recipe's eval_every
    assert report["train"][-1]["loss"] < report["train"][0]["loss"]
    assert matplotlib.image.imread(out / "curves.png").shape[:2] == (400, 1000)

    assert cli.main(["eval", "toy", str(out / "last.h5")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"toy {out / 'last.h5'} (step 30)")
    accuracy = float(printed.split("accuracy: ")[1].split()[0])
    assert accuracy == pytest.approx(report["eval"][-1]["accuracy"], abs=1e-6)


def test_train_options_reach_the_trainer(registry, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "toy", "--out", str(out), "--steps", "6", "--eval-every", "4",
                     "--batch", "16", "--seed", "3"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert [row["step"] for row in report["eval"]] == [4, 6]
    meta = nl.io.load(out / "last.h5", toy_model())
    assert meta["loader"]["batch"] == 6 and meta["seed"] == 3  # 16 per batch: 16 batches/epoch


def test_clip_grad_norm_reaches_the_trainer(registry, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "toy", "--out", str(out), "--steps", "5",
                     "--clip-grad-norm", "0.5"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert all(row["grad_norm"] > 0 for row in report["train"])


def test_resume_through_the_cli_matches_an_uninterrupted_run(registry, tmp_path, capsys):
    assert cli.main(["train", "toy", "--out", str(tmp_path / "whole"), "--steps", "14"]) == 0
    assert cli.main(["train", "toy", "--out", str(tmp_path / "split"), "--steps", "7"]) == 0
    assert cli.main(["train", "toy", "--out", str(tmp_path / "split"), "--steps", "14",
                     "--resume"]) == 0
    whole, split = weights(tmp_path / "whole" / "last.h5"), weights(tmp_path / "split" /
                                                                    "last.h5")
    for name in whole:
        np.testing.assert_array_equal(split[name], whole[name], err_msg=name)


def test_ctrl_c_saves_and_says_how_to_resume(registry, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(toy_recipe, "INTERRUPT_AT", 4)
    assert cli.main(["train", "toy", "--out", str(out), "--steps", "8"]) == 130
    err = capsys.readouterr().err
    assert f"saved the state after step 3 to {out / 'last.h5'}" in err
    # the printed command repeats --steps, which the run does not store ...
    command = f"nnlite train toy --steps 8 --out {out} --resume"
    assert f"continue with: {command}\n" in err
    monkeypatch.setattr(toy_recipe, "INTERRUPT_AT", None)
    assert cli.main(command.split()[1:]) == 0  # ... so it ends where the run would have
    assert nl.io.load(out / "last.h5", toy_model())["step"] == 8


def test_predict_prints_each_image_text(registry, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "toy", "--out", str(out), "--steps", "10"]) == 0
    x, _ = toy_arrays(4, seed=9)
    paths = []
    for i, row in enumerate(x):
        paths.append(str(tmp_path / f"img{i}.npy"))
        np.save(paths[-1], row)
    capsys.readouterr()
    assert cli.main(["predict", "toy", str(out / "best.h5")] + paths) == 0
    lines = capsys.readouterr().out.splitlines()
    model = toy_model()
    nl.io.load(out / "best.h5", model)
    model.eval()
    expected = ["abc"[i] for i in model(nl.tensor(x)).numpy().argmax(axis=1)]
    assert lines == [f"{path}\t{text}" for path, text in zip(paths, expected)]

    lexicon = tmp_path / "words.txt"
    lexicon.write_text("zz\n\n")
    assert cli.main(["predict", "toy", str(out / "best.h5"), paths[0], "--beam", "3",
                     "--lexicon", str(lexicon)]) == 0
    assert capsys.readouterr().out == f"{paths[0]}\t?\n"


def test_visualize_writes_png_grid_and_gif(registry, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "toy", "--out", str(out), "--steps", "5"]) == 0
    image = tmp_path / "word.npy"
    np.save(image, toy_arrays(1, seed=3)[0][0])
    pictures = tmp_path / "pictures"
    assert cli.main(["visualize", "toy", str(out / "last.h5"), str(image), "--out",
                     str(pictures)]) == 0
    assert sorted(os.listdir(pictures)) == ["word_attention.gif", "word_attention.png"]
    assert matplotlib.image.imread(pictures / "word_attention.png").ndim == 3
    with Image.open(pictures / "word_attention.gif") as gif:
        assert gif.n_frames == 3  # one frame per attention step


def test_bad_input_is_reported(registry, tmp_path, capsys):
    assert cli.main(["train", "resnet"]) == 2
    assert "nnlite train: unknown model 'resnet'; available models: bare, toy" in \
        capsys.readouterr().err
    assert cli.main(["train", "bare", "--out", str(tmp_path)]) == 2
    assert "nnlite train: model bare has no training recipe yet (small_models defines no " \
           "training_recipe)" in capsys.readouterr().err
    missing = tmp_path / "nothing"
    assert cli.main(["train", "toy", "--out", str(missing), "--resume"]) == 2
    assert f"--resume: no checkpoint to resume from: {missing / 'last.h5'} does not exist" \
        in capsys.readouterr().err
    assert cli.main(["train", "toy", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "--steps must be a positive int, got 0" in capsys.readouterr().err
    assert cli.main(["train", "toy", "--clip-grad-norm", "0", "--out", str(tmp_path)]) == 2
    assert "--clip-grad-norm must be a positive finite number, got 0.0" in capsys.readouterr().err
    assert cli.main(["train", "toy", "--data", "/no/such", "--out", str(tmp_path)]) == 2
    assert "--data /no/such: no toy dataset at '/no/such'" in capsys.readouterr().err
    assert cli.main(["eval", "toy", str(tmp_path / "x.h5")]) == 2
    assert f"nnlite eval: checkpoint '{tmp_path / 'x.h5'}' does not exist" in \
        capsys.readouterr().err
    assert cli.main(["predict", "bare", "x.h5", "y.png"]) == 2
    assert "model bare has no prediction support yet (small_models defines no load_image, " \
           "predict_texts)" in capsys.readouterr().err
    assert cli.main(["visualize", "bare", "x.h5", "y.png", "--out", str(tmp_path)]) == 2
    assert "model bare has no attention masks or boxes to visualise yet (small_models " \
           "defines no load_image, attention_masks)" in capsys.readouterr().err
    other = tmp_path / "other.h5"
    nl.io.save(other, ConvLSTMNet())
    assert cli.main(["predict", "toy", str(other), "y.png"]) == 2
    assert "was saved from a different model" in capsys.readouterr().err
    assert cli.main(["train", "toy", "--out", str(tmp_path / "r"), "--steps", "2"]) == 0
    assert cli.main(["predict", "toy", str(tmp_path / "r" / "last.h5"), "nope.npy"]) == 2
    assert "no such image file: nope.npy" in capsys.readouterr().err


def test_predict_lexicon_in_another_encoding_is_a_message(registry, tmp_path, capsys):
    latin = tmp_path / "words.txt"
    latin.write_bytes("ok\ncafé\n".encode("latin-1"))
    assert cli.main(["predict", "toy", "x.h5", "y.npy", "--lexicon", str(latin)]) == 2
    err = capsys.readouterr().err
    assert f"nnlite predict: --lexicon: lexicon: {latin}:2: cannot decode byte 0xe9 as " \
           f"UTF-8" in err and "Traceback" not in err
    marked = tmp_path / "marked.txt"
    marked.write_bytes("café\n".encode("utf-16"))  # Windows' "Unicode": a BOM, then UTF-16
    assert cli.main(["predict", "toy", "x.h5", "y.npy", "--lexicon", str(marked)]) == 2
    assert "checkpoint 'x.h5' does not exist" in capsys.readouterr().err  # got past the lexicon


def test_train_refuses_to_overwrite_an_earlier_run(registry, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --out, runs/toy, lands here
    assert cli.main(["train", "toy", "--steps", "10"]) == 0
    run = tmp_path / "runs" / "toy"
    before = {name: (run / name).read_bytes() for name in os.listdir(run)}
    capsys.readouterr()
    assert cli.main(["train", "toy", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nnlite train: {os.path.join('runs', 'toy')} already holds a run "
                          f"(best.h5, curves.png, last.h5, metrics.json)")
    assert "--resume" in err and "new --out" in err and "--overwrite" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert {name: (run / name).read_bytes() for name in os.listdir(run)} == before
    assert cli.main(["train", "toy", "--steps", "1", "--resume", "--overwrite"]) == 2
    assert "give one" in capsys.readouterr().err
    assert cli.main(["train", "toy", "--steps", "2", "--overwrite"]) == 0
    report = json.loads((run / "metrics.json").read_text())
    assert report["eval"][-1]["step"] == 2 and nl.io.load(run / "best.h5",
                                                          toy_model())["step"] == 2


def _one_line_message(capsys, command):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.split("\n") if line and not line.startswith("\r")]  # no bar
    assert len(lines) == 1 and lines[0].startswith(f"nnlite {command}: "), err
    return lines[0]


def test_unwritable_out_is_a_message_naming_path_and_reason(registry, tmp_path, capsys):
    """Permissions cannot stop root (tests may run as root), so the unwritable
    places are a path under a regular file and a path that is a file."""
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for out in (afile / "run", afile):
        assert cli.main(["train", "toy", "--out", str(out), "--steps", "2"]) == 2
        err = _one_line_message(capsys, "train")
        assert f"--out {out}: " in err and ("Not a directory" in err or "is a file" in err)
    assert afile.read_text() == "not a folder"
    assert cli.main(["train", "toy", "--out", str(tmp_path / "run"), "--steps", "2"]) == 0
    image = tmp_path / "word.npy"
    np.save(image, toy_arrays(1, seed=3)[0][0])
    capsys.readouterr()
    for out in (afile / "pictures", afile):
        assert cli.main(["visualize", "toy", str(tmp_path / "run" / "last.h5"), str(image),
                         "--out", str(out)]) == 2
        err = _one_line_message(capsys, "visualize")
        assert f"--out {out}: " in err


def test_a_write_failure_during_training_is_a_message(registry, tmp_path, capsys, monkeypatch):
    def disk_full(path, *args, **kwargs):
        raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr(nl.io, "save", disk_full)
    assert cli.main(["train", "toy", "--out", str(tmp_path / "run"), "--steps", "12"]) == 1
    err = _one_line_message(capsys, "train")
    assert f"{tmp_path / 'run' / 'best.h5'}: No space left on device" in err


def test_unreadable_images_and_checkpoints_are_messages(registry, tmp_path, capsys):
    assert cli.main(["train", "toy", "--out", str(tmp_path / "run"), "--steps", "2"]) == 0
    checkpoint = str(tmp_path / "run" / "last.h5")
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")  # np.load raises EOFError on it
    capsys.readouterr()
    assert cli.main(["predict", "toy", checkpoint, str(empty)]) == 2
    assert f"cannot read image '{empty}'" in _one_line_message(capsys, "predict")
    folder = tmp_path / "folder"
    folder.mkdir()
    for argv, command in ((["eval", "toy", str(folder)], "eval"),
                          (["predict", "toy", str(folder), str(empty)], "predict"),
                          (["visualize", "toy", str(folder), str(empty), "--out",
                            str(tmp_path / "v")], "visualize")):
        assert cli.main(argv) == 2
        assert f"checkpoint '{folder}' is a directory, not a checkpoint file" in \
            _one_line_message(capsys, command)
    assert cli.main(["visualize", "toy", str(tmp_path / "none.h5"), str(empty), "--out",
                     str(tmp_path / "v")]) == 2
    assert f"checkpoint '{tmp_path / 'none.h5'}' does not exist" in \
        _one_line_message(capsys, "visualize")

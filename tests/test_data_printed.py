"""Printed-text data (nnlite.data.printed, .words, .fonts) and the
unseen-fonts benchmark (nnlite.data.benchmark): seeded, held-out fonts and
words never trained on, images fitted like a user's, and `nnlite eval crnn
--data unseen-fonts`. Kept to a few seconds: small datasets, few items."""
import re
import string

import numpy as np
import pytest
from PIL import Image

import nnlite as nl
from nnlite import cli
from nnlite.data import (Curriculum, DataLoader, DataLoaderError, PrintedWords,
                         UnseenFontsBenchmark, fonts, text_render)
from nnlite.data import words as word_lists
from nnlite.data.benchmark import BENCHMARK_SIZE
from nnlite.models import crnn, crnn_train

ALPHABET = set(string.ascii_letters + string.digits)
TINY = dict(channels=(4, 8, 8, 8, 16, 16, 16), hidden_size=16)


def assert_items_equal(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]


# ------------------------------------------------------------------ fonts --

def test_training_and_held_out_families_are_disjoint_and_cover_every_family():
    assert set(fonts.TRAINING_FAMILIES).isdisjoint(fonts.HELD_OUT_FAMILIES)
    assert set(fonts.TRAINING_FAMILIES) | set(fonts.HELD_OUT_FAMILIES) == set(fonts.FAMILIES)
    assert set(fonts.faces(fonts.TRAINING_FAMILIES)).isdisjoint(
        fonts.faces(fonts.HELD_OUT_FAMILIES))
    assert len(fonts.HELD_OUT_FAMILIES) >= 3 and len(fonts.TRAINING_FAMILIES) >= 4


@pytest.mark.parametrize("family", list(fonts.FAMILIES))
def test_every_face_draws_every_character(family):
    """Every face draws all 62 characters with ink, nearly all different: a
    face without letters (STIXNonUnicode, the Display faces: no ink) or with
    placeholder boxes (LastResortHE: one shape) fails. Symbol faces that put
    distinct symbols at the letters' code points (cmsy10, cmex10) would pass;
    the table keeps them out, as fonts.py says."""
    for face in fonts.faces([family]):
        bitmaps = [text_render.glyph(face, c)[0] for c in sorted(ALPHABET)]
        assert all(b.size and b.max() > 0.5 for b in bitmaps), face
        distinct = {(b.shape, b.round(2).tobytes()) for b in bitmaps}
        assert len(distinct) >= 58, (face, len(distinct))
        assert fonts.family_of(face) == family


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown font families.*'Comic Sans'"):
        PrintedWords(4, families=["DejaVu Sans", "Comic Sans"])


# ------------------------------------------------------------------ words --

def test_shipped_word_list_and_held_out_words():
    words = word_lists.english_words()
    assert len(words) == 10000 and len(set(words)) == len(words)
    assert all(re.fullmatch(r"[a-z]{1,16}", w) for w in words)
    assert words[:5] == ("the", "to", "and", "of", "a")  # frequency order
    held, training = set(word_lists.held_out_words()), set(word_lists.training_words())
    assert len(held) == 1000 and held.isdisjoint(training) and held | training == set(words)


def test_sampler_mixes_cases_digits_and_tokens_and_never_draws_held_out_words():
    sampler = word_lists.TextSampler()
    rng = np.random.default_rng(0)
    texts = [sampler(rng) for _ in range(2000)]
    assert all(1 <= len(t) <= 16 and set(t) <= ALPHABET for t in texts)
    kinds = {"lower": str.islower, "title": str.istitle, "upper": str.isupper,
             "digits": str.isdigit}
    for name, test in kinds.items():
        assert sum(map(test, texts)) > 100, name
    assert any(re.fullmatch(r"[A-Za-z]+[0-9]+", t) for t in texts)
    held = set(word_lists.held_out_words())
    drawn = [sampler.word(rng).lower() for _ in range(3000)]
    assert not held.intersection(drawn)
    assert len(set(drawn) & set(word_lists.training_words())) > 1000


def test_texts_longer_than_16_are_refused_with_a_reason():
    with pytest.raises(ValueError, match=r"'abcdefghijklmnopq' has 17 characters; at most 16"):
        word_lists.check_text("abcdefghijklmnopq")
    with pytest.raises(ValueError, match="has 17 characters"):
        word_lists.TextSampler(words=["short", "abcdefghijklmnopq"])
    with pytest.raises(ValueError, match="max_length must be 1..16, got 17"):
        word_lists.TextSampler(max_length=17)
    with pytest.raises(ValueError, match=r"characters \["):
        word_lists.TextSampler(words=["don't"])
    # a chosen shorter max_length skips the longer words of the list
    sampler = word_lists.TextSampler(words=["cat", "elephant"], max_length=5)
    rng = np.random.default_rng(1)
    assert {sampler.word(rng).lower() for _ in range(50)} == {"cat"}
    assert max(len(sampler(rng)) for _ in range(500)) <= 5


# --------------------------------------------------------------- renderer --

def test_items_are_seeded_shaped_and_in_range():
    data = PrintedWords(50, seed=3)
    first = [data[i] for i in (7, 2, 31)]
    again = PrintedWords(50, seed=3)
    for item, index in zip(first, (7, 2, 31)):
        assert_items_equal(item, again[index])  # any order, any instance
        image, text = item
        assert image.shape == (1, 32, 128) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert 1 <= len(text) <= 16 and set(text) <= ALPHABET
    other = PrintedWords(50, seed=4)
    assert any(not np.array_equal(data[i][0], other[i][0]) for i in range(3))


def test_natural_images_keep_their_aspect_and_lie_on_the_8_bit_grid():
    data = PrintedWords(40, seed=0)
    shapes = set()
    for i in range(20):
        image, text, face = data.natural(i)
        assert image.dtype == np.float32 and image.ndim == 2
        np.testing.assert_array_equal(np.round(image * 255) / 255, image)
        shapes.add(image.shape)
        assert fonts.family_of(face) in fonts.TRAINING_FAMILIES
    heights = [h for h, _ in shapes]
    assert len(shapes) == 20 and max(heights) > 2 * min(heights)


def test_training_never_renders_a_held_out_family():
    data = PrintedWords(400, seed=5)
    families = {fonts.family_of(data.natural(i)[2]) for i in range(150)}
    assert families <= set(fonts.TRAINING_FAMILIES) and len(families) >= 4


def test_a_training_image_is_fitted_as_nnlite_predict_fits_a_users_file(tmp_path):
    """Save the natural render as a user's PNG; `nnlite predict crnn`'s
    load_image must give exactly the training item."""
    for data in (PrintedWords(10, seed=2), UnseenFontsBenchmark(10, seed=2)):
        for index in (0, 1):
            natural, text, _ = data.natural(index)
            path = tmp_path / f"{type(data).__name__}{index}.png"
            Image.fromarray(np.round(natural * 255).astype(np.uint8), "L").save(path)
            np.testing.assert_array_equal(crnn_train.load_image(path), data[index][0])


def test_the_curriculum_goes_from_clean_to_augmented_by_step():
    schedule = Curriculum(clean_steps=10, ramp_steps=20, final=0.8)
    assert [schedule(s) for s in (0, 9, 10, 20, 30, 10**9)] == [0, 0, 0, 0.4, 0.8, 0.8]
    with pytest.raises(ValueError, match="final strength"):
        Curriculum(final=1.5)
    data = PrintedWords(10**6, seed=1, curriculum=Curriculum(2, 2), items_per_step=4)
    assert [data.strength_of(i) for i in (0, 7, 8, 12, 16, 999)] == [0, 0, 0, 0.5, 1, 1]
    clean, full = PrintedWords(100, seed=1, strength=0.0), PrintedWords(100, seed=1)
    assert_items_equal(data[3], clean[3])
    assert_items_equal(data[20], full[20])
    # clean renders: white paper and black ink; full strength varies both
    clean_images = [clean.natural(i)[0] for i in range(8)]
    assert all(im.max() == 1.0 and im.min() < 0.05 for im in clean_images)
    full_images = [full.natural(i)[0] for i in range(30)]
    assert sum(im.max() < 0.95 or im.min() > 0.1 for im in full_images) >= 5


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="strength must be in"):
        PrintedWords(4, strength=2)
    with pytest.raises(ValueError, match="items_per_step"):
        PrintedWords(4, items_per_step=0)
    with pytest.raises(ValueError, match="size must be"):
        UnseenFontsBenchmark(-1)


def test_process_workers_give_the_thread_loaders_batches():
    data = PrintedWords(24, seed=9, strength=0.5)
    threads = list(DataLoader(data, 4, prefetch=2, workers=1))
    processes = list(DataLoader(data, 4, prefetch=3, workers=2, worker_type="process"))
    assert len(processes) == 6
    for a, b in zip(threads, processes):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1]
    with pytest.raises(ValueError, match="worker_type"):
        DataLoader(data, 4, worker_type="fiber")


def test_a_failing_item_in_a_worker_process_names_its_index():
    data = PrintedWords(8, seed=0)
    data.faces = ["/no/such/font.ttf"]  # as if the font file vanished after start-up
    loader = DataLoader(data, 4, prefetch=1, worker_type="process")
    with pytest.raises(DataLoaderError, match=r"dataset\[0\].*font.ttf") as info:
        next(iter(loader))
    assert info.value.index == 0


# -------------------------------------------------------------- benchmark --

def test_benchmark_size_determinism_fonts_and_words():
    bench = UnseenFontsBenchmark()
    assert len(bench) == BENCHMARK_SIZE >= 1000
    again = UnseenFontsBenchmark()
    for index in (0, 499, 999):
        assert_items_equal(bench[index], again[index])
    held = set(word_lists.held_out_words())
    families, texts = set(), []
    for index in range(0, 1000, 10):
        image, text, face = bench.natural(index)
        families.add(fonts.family_of(face))
        texts.append(text)
    assert families == set(fonts.HELD_OUT_FAMILIES)
    assert all(t.isdigit() or t.lower() in held for t in texts)
    assert any(t.isdigit() for t in texts) and any(t.isupper() for t in texts)


def test_benchmark_renderer_is_not_the_training_renderer(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the benchmark must not use the training glyph compositor")
    monkeypatch.setattr(text_render, "word_layout", forbidden)
    monkeypatch.setattr(text_render, "glyph", forbidden)
    image, text = UnseenFontsBenchmark(5)[3]
    assert image.shape == (1, 32, 128) and text
    with pytest.raises(AssertionError, match="glyph compositor"):
        PrintedWords(5)[3]


def test_cli_eval_reports_the_benchmark_for_a_tiny_model(tmp_path, capsys):
    nl.manual_seed(0)
    model = crnn.crnn(**TINY)
    path = tmp_path / "tiny.h5"
    nl.io.save(path, model)
    assert cli.main(["eval", "crnn", str(path), "--data", "unseen-fonts"]) == 0
    out = capsys.readouterr().out
    figures = dict(re.findall(r"^(\w+): ([0-9.e-]+)$", out, re.M))
    assert set(figures) >= {"word_accuracy", "character_error_rate", "loss"}
    # the same figures, computed here from the model's own readings
    bench = UnseenFontsBenchmark()
    items = [bench[i] for i in range(len(bench))]
    model.eval()
    with nl.no_grad():
        readings = []
        for start in range(0, len(items), 250):
            images = np.stack([image for image, _ in items[start:start + 250]])
            readings += crnn_train.predict_texts(model, images)
    truths = [text for _, text in items]
    assert float(figures["character_error_rate"]) == pytest.approx(
        nl.metrics.character_error_rate(readings, truths), rel=1e-5)
    assert float(figures["word_accuracy"]) == pytest.approx(
        nl.metrics.word_accuracy(readings, truths), abs=1e-6)


def test_cli_refuses_to_train_on_the_benchmark_and_unknown_options(tmp_path, capsys):
    assert cli.main(["train", "crnn", "--data", "unseen-fonts", "--out",
                     str(tmp_path / "run")]) == 2
    assert "for `nnlite eval` only" in capsys.readouterr().err
    assert cli.main(["train", "crnn", "--data", "printed", "--option", "colour=red",
                     "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "takes no option 'colour'" in err and "workers" in err
    assert not (tmp_path / "run").exists()


def test_fitting_a_large_image_keeps_thin_strokes():
    """A 2-pixel stroke of a word drawn 4x larger than the model's input must
    survive the fit wherever it lies; plain bilinear sampling skips rows."""
    from nnlite.data.images import fit
    for row in range(60, 64):
        image = np.ones((128, 400), np.float32)
        image[row:row + 2, 40:360] = 0.0
        fitted = fit(image, 32, 128, "pad")
        assert fitted[:, 20:80].min() < 0.8, row
        assert fitted.shape == (32, 128) and fitted[:, 100:].min() == 1.0  # white padding


def test_the_benchmark_cannot_be_resized_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "tiny.h5"
    nl.io.save(path, crnn.crnn(**TINY))
    assert cli.main(["eval", "crnn", str(path), "--data", "unseen-fonts",
                     "--option", "val_size=10"]) == 2
    assert "benchmark is fixed" in capsys.readouterr().err


def test_the_printed_recipe_reads_its_stream_in_order_with_render_processes(tmp_path):
    from nnlite.training import Trainer
    recipe = crnn_train.training_recipe(data="printed", batch=4, model_options=TINY, show=0,
                                        val_size=8, clean_steps=2, ramp_steps=2, workers=1)
    loader = recipe.train_loader
    assert not loader.shuffle and loader.worker_type == "process"
    data = loader.dataset
    assert [data.strength_of(i) for i in (0, 7, 8, 12, 16)] == [0, 0, 0, 0.5, 1]
    assert set(fonts.faces(fonts.HELD_OUT_FAMILIES)).isdisjoint(data.faces)
    trainer = Trainer(recipe.model, recipe.optimizer, recipe.task, loader, recipe.val_loader,
                      steps=3, eval_every=3, out_dir=tmp_path, progress=False)
    history = trainer.fit()
    assert loader.state_dict() == {"seed": 0, "epoch": 0, "batch": 3}
    assert np.isfinite(history["eval"][-1]["loss"]) and len(history["train"]) >= 1


def test_trim_to_ink_keeps_the_word_and_a_margin_of_paper():
    from nnlite.data.images import trim_to_ink
    page = np.full((90, 400), 0.9, np.float32)  # grey paper
    page[30:50, 100:180] = 0.1                    # the "word": 20 rows high
    trimmed = trim_to_ink(page)
    assert trimmed.shape == (20 + 2 * 5, 80 + 2 * 5)  # a quarter of 20 rows each side
    assert trimmed.min() == pytest.approx(0.1) and trimmed[0, 0] == pytest.approx(0.9)
    # light text on dark paper, at the image's edge: the margin stops there
    dark = np.zeros((40, 100), np.float32)
    dark[0:12, 0:30] = 1.0
    assert trim_to_ink(dark).shape == (12 + 3, 30 + 3)
    # a speck of noise (one pixel) does not widen the box
    page[5, 5] = 0.0
    assert trim_to_ink(page).shape == (30, 90)


def test_trim_to_ink_leaves_an_image_without_clear_ink_alone():
    from nnlite.data.images import trim_to_ink
    flat = np.full((32, 100), 0.5, np.float32)
    assert trim_to_ink(flat) is flat
    faint = flat + np.random.default_rng(0).uniform(-0.03, 0.03, flat.shape).astype(np.float32)
    assert trim_to_ink(faint) is faint
    tiny = np.zeros((2, 5), np.float32)
    assert trim_to_ink(tiny) is tiny
    with pytest.raises(ValueError, match=r"trim_to_ink: expected a grey \(H, W\) image"):
        trim_to_ink(np.zeros((4, 4, 3), np.float32))

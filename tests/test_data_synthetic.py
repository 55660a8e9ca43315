"""Synthetic generators: shapes, dtypes, labels that match the rendering,
determinism by seed, bad arguments."""
import string

import numpy as np
import pytest

from nnlite.data import (SyntheticDigitSequences, SyntheticLetters, SyntheticWords,
                         arithmetic_task, identity_task, integer_addition_task)

CRNN_CHARS = string.ascii_letters + string.digits
CHARNET_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz "


def test_words_shapes_text_and_range():
    data = SyntheticWords(50, CRNN_CHARS, height=32, width=128, max_length=16, seed=1)
    lengths = set()
    for i in range(50):
        image, text = data[i]
        assert image.shape == (1, 32, 128) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert 1 <= len(text) <= 16 and set(text) <= set(CRNN_CHARS)
        assert image.std() > 0.02  # something was drawn
        lengths.add(len(text))
    assert len(lengths) > 5


def test_words_charnet_alphabet_never_draws_the_padding_space():
    data = SyntheticWords(40, CHARNET_ALPHABET, max_length=23, seed=2)
    texts = [data[i][1] for i in range(40)]
    assert all(" " not in t and 1 <= len(t) <= 23 for t in texts)
    assert data[0][0].shape == (1, 32, 100)


def test_words_deterministic_by_seed_and_index():
    a = SyntheticWords(10, CRNN_CHARS, seed=7)
    b = SyntheticWords(10, CRNN_CHARS, seed=7)
    c = SyntheticWords(10, CRNN_CHARS, seed=8)
    for i in (0, 5, 9):
        assert np.array_equal(a[i][0], b[i][0]) and a[i][1] == b[i][1]
    assert a[3][1] != c[3][1] or not np.array_equal(a[3][0], c[3][0])
    assert [a[i][1] for i in range(10)] != [c[i][1] for i in range(10)]
    assert not np.array_equal(a[1][0], a[2][0])


def test_words_ink_follows_the_label():
    # Two very different words: the one labelled "WWWWW" must carry far more
    # dark ink than the one labelled "l", in every rendering.
    data = SyntheticWords(40, string.ascii_letters, height=32, width=200, seed=3,
                          lexicon=["l", "WWWWW"], augment=False)
    ink = {"l": [], "WWWWW": []}
    for i in range(40):
        image, text = data[i]
        ink[text].append(float((1.0 - image).sum()))
    assert ink["l"] and ink["WWWWW"]
    assert max(ink["l"]) * 4 < min(ink["WWWWW"])
    # without augmentation one word always gives one image
    first = {}
    for i in range(40):
        image, text = data[i]
        if text in first:
            assert np.array_equal(first[text], image)
        first[text] = image


def test_words_monospaced_ink_width_grows_with_length():
    data = SyntheticWords(1, string.ascii_uppercase, height=32, width=400, augment=False,
                          fonts=["DejaVuSansMono"])
    widths = []
    for word in ("H", "HH", "HHH", "HHHH"):
        ink_columns = np.nonzero((1.0 - data.render(word, np.random.default_rng(0))[0]).max(0)
                                 > 0.5)[0]
        widths.append(ink_columns[-1] - ink_columns[0] + 1)
    steps = np.diff(widths)
    assert (steps > 5).all() and steps.max() - steps.min() <= 2  # one advance per letter


def _ink_span(image):
    columns = np.nonzero((1.0 - image[0]).max(0) > 0.5)[0]
    return (columns[-1] - columns[0] + 1) / image.shape[-1]


def test_words_crop_layout_fills_the_width_as_a_resized_word_crop():
    rng = np.random.default_rng
    crop = SyntheticWords(1, CHARNET_ALPHABET, augment=False, layout="crop")
    centred = SyntheticWords(1, CHARNET_ALPHABET, augment=False)
    for word in ("w", "abc", "0123456789", "abcdefghijklmnopqrstuvw"):
        assert 0.8 <= _ink_span(crop.render(word, rng(0))) <= 0.97, word
    assert _ink_span(centred.render("w", rng(0))) < 0.3  # a short word keeps its aspect
    assert _ink_span(centred.render("abc", rng(0))) < 0.6
    augmented = SyntheticWords(30, CHARNET_ALPHABET, max_length=12, seed=4, layout="crop")
    spans = [_ink_span(1.0 - np.abs(image - np.median(image)) / np.ptp(image))
             for image, _ in (augmented[i] for i in range(30))]
    assert np.median(spans) > 0.8
    with pytest.raises(ValueError, match="layout must be one of"):
        SyntheticWords(5, CHARNET_ALPHABET, layout="tight")


def test_words_lexicon_file_and_errors(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("hello\nworld\n\n")
    data = SyntheticWords(20, CHARNET_ALPHABET, lexicon=str(path), seed=0)
    assert {data[i][1] for i in range(20)} <= {"hello", "world"}
    with pytest.raises(ValueError, match="'Hello' has characters \\['H'\\] outside"):
        SyntheticWords(5, CHARNET_ALPHABET, lexicon=["Hello"])
    with pytest.raises(FileNotFoundError, match="lexicon file"):
        SyntheticWords(5, CHARNET_ALPHABET, lexicon=str(tmp_path / "missing.txt"))
    with pytest.raises(FileNotFoundError, match="font 'NoSuchFont'"):
        SyntheticWords(5, CHARNET_ALPHABET, fonts=["NoSuchFont"])
    with pytest.raises(ValueError, match="min_length"):
        SyntheticWords(5, CHARNET_ALPHABET, min_length=4, max_length=2)
    with pytest.raises(IndexError, match="out of range"):
        data[20]


def test_letters_match_the_seed_description():
    data = SyntheticLetters(30, seed=4)
    lengths = set()
    for i in range(30):
        image, text = data[i]
        assert image.shape == (1, 40, 40) and image.dtype == np.float32
        assert 1 <= len(text) <= 4 and set(text) <= set(string.ascii_uppercase)
        lengths.add(len(text))
        assert image.min() < 0  # noise is not clipped
    assert lengths == {1, 2, 3, 4}
    background = np.concatenate([data[i][0][0, :, :1].ravel() for i in range(30)])
    assert abs(background.std() - 0.1) < 0.03  # mostly noise in column 0


def test_letters_image_is_the_label_drawn_in_grey_128():
    from PIL import Image, ImageDraw, ImageFont
    import matplotlib
    import os
    font = ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf",
                                           "DejaVuSans.ttf"), 9)
    data = SyntheticLetters(12, seed=5, noise=0.0)
    peaks = []
    for i in range(12):
        image, text = data[i]
        ink = np.argwhere(image[0] > 0)
        top, left = ink.min(0)
        bottom, right = ink.max(0)
        assert top >= 1 and left >= 1 and bottom <= 38 and right <= 38  # 1-pixel margin
        peaks.append(image.max())
        # draw the label ourselves at the found place: it must be the same picture
        bbox = font.getbbox(text)
        canvas = Image.new("L", (40, 40), 0)
        ImageDraw.Draw(canvas).text((left - bbox[0], top - bbox[1]), text, fill=128, font=font)
        expected = np.asarray(canvas, dtype=np.float32) / 255
        assert np.array_equal(image[0], expected), text
    assert max(peaks) == pytest.approx(128 / 255)  # grey 128 where a stroke is fully covered


def test_letters_deterministic_by_seed():
    a, b, c = SyntheticLetters(5, seed=1), SyntheticLetters(5, seed=1), SyntheticLetters(5, seed=2)
    assert np.array_equal(a[2][0], b[2][0]) and a[2][1] == b[2][1]
    assert not np.array_equal(a[2][0], c[2][0])


def _check_digit_item(image, labels, box, variable):
    assert image.shape == (1, 128, 256) and image.dtype == np.float32
    assert labels.shape == (5,) and labels.dtype == np.int64
    assert box.shape == (4,) and box.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 1
    count = int((labels != 10).sum())
    assert (labels[:count] <= 9).all() and (labels[count:] == 10).all()  # padded at the end
    assert count == 5 or (variable and count >= 1)
    x_center, y_center, h, w = box.tolist()
    assert h == 28 and w == 28 * count
    x0, y0 = int(x_center - w / 2), int(y_center - h / 2)
    assert x0 >= 0 and y0 >= 0 and x0 + w <= 256 and y0 + h <= 128
    inside = np.zeros_like(image[0], dtype=bool)
    inside[y0:y0 + 28, x0:x0 + int(w)] = True
    assert image[0][~inside].max() == 0  # the box encloses all the ink
    for k in range(count):  # every labelled cell has a digit in it
        assert image[0, y0:y0 + 28, x0 + 28 * k:x0 + 28 * (k + 1)].max() > 0.5
    return count


@pytest.mark.parametrize("variable", [False, True])
def test_digit_sequences_labels_and_box(variable):
    data = SyntheticDigitSequences(25, seed=6, variable_length=variable)
    counts = {_check_digit_item(*data[i], variable) for i in range(25)}
    assert counts == ({1, 2, 3, 4, 5} if variable else {5})


def _cells(data):
    for i in range(len(data)):
        image, labels, box = data[i]
        x0, y0 = int(box[0] - box[3] / 2), int(box[1] - box[2] / 2)
        for k, digit in enumerate(labels[labels != 10]):
            yield int(digit), image[0, y0:y0 + 28, x0 + 28 * k:x0 + 28 * k + 28].ravel()


def test_digit_cells_look_like_their_labels():
    # Mean cell per label from one seed, then nearest-template classification
    # of another seed's cells: far above the 10% of labels not matching cells.
    sums, counts = np.zeros((10, 784)), np.zeros(10)
    for digit, cell in _cells(SyntheticDigitSequences(60, seed=9)):
        sums[digit] += cell
        counts[digit] += 1
    assert counts.min() > 10
    templates = sums / counts[:, None]
    templates -= templates.mean(1, keepdims=True)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    right = total = 0
    for digit, cell in _cells(SyntheticDigitSequences(20, seed=10)):
        right += int(np.argmax(templates @ (cell - cell.mean())) == digit)
        total += 1
    assert right / total > 0.6


def test_digit_sequences_from_mnist_put_each_cell_under_its_label():
    class FakeMnist:  # digit d is a 28x28 cell filled with (d + 1) * 20
        labels = np.arange(10).repeat(3)
        images = ((labels + 1) * 20).astype(np.uint8)[:, None, None].repeat(28, 1).repeat(28, 2)
    data = SyntheticDigitSequences(10, seed=2, variable_length=True, mnist=FakeMnist())
    for i in range(10):
        image, labels, box = data[i]
        x0, y0 = int(box[0] - box[3] / 2), int(box[1] - box[2] / 2)
        for k, digit in enumerate(labels[labels != 10]):
            cell = image[0, y0:y0 + 28, x0 + 28 * k:x0 + 28 * k + 28]
            assert np.allclose(cell, (digit + 1) * 20 / 255)


def test_digit_sequences_deterministic_by_seed():
    a = SyntheticDigitSequences(4, seed=3)
    b = SyntheticDigitSequences(4, seed=3)
    c = SyntheticDigitSequences(4, seed=4)
    for x, y in zip(a[1], b[1]):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[1][0], c[1][0])
    with pytest.raises(ValueError, match="seed must be"):
        SyntheticDigitSequences(4, seed=-1)


@pytest.mark.parametrize("op,formula", [
    ("add", lambda a, b: a + b), ("a-b", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("a/b", lambda a, b: a / b), ("a^2", lambda a, b: a * a), ("sqrt(a)", lambda a, b: np.sqrt(a))])
def test_arithmetic_task_targets(op, formula):
    x, y = arithmetic_task(op, 64, seed=1)
    assert x.shape == (64, 100) and y.shape == (64, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert 0 <= x.min() and x.max() < 1
    a = x[:, 0:10].astype(np.float64).sum(1)
    b = x[:, 5:15].astype(np.float64).sum(1)
    np.testing.assert_allclose(y[:, 0], formula(a, b), rtol=1e-5)
    xe, _ = arithmetic_task(op, 64, seed=1, extrapolation=True)
    assert xe.max() > 1 and xe.max() < 5
    assert np.array_equal(x, arithmetic_task(op, 64, seed=1)[0])
    assert not np.array_equal(x, arithmetic_task(op, 64, seed=2)[0])


def test_identity_and_integer_tasks():
    x, y = identity_task(100, seed=0, value_range=(-20, 20))
    assert x.shape == (100, 1) and np.array_equal(x, y) and x.min() < -5 and x.max() > 5
    pairs, sums = integer_addition_task(50, seed=0, high=100)
    assert pairs.shape == (50, 2) and (pairs >= 1).all() and (pairs < 100).all()
    assert np.array_equal(sums[:, 0], pairs.sum(1)) and np.array_equal(pairs, np.round(pairs))
    with pytest.raises(ValueError, match="op must be one of"):
        arithmetic_task("pow", 4)

"""Loaders for datasets on disk, each on tiny files written here in the true
format: MJSynth, ImageFolderWithLabels, MNIST idx, SVHN digitStruct.mat."""
import gzip
import os
import re
import struct

import numpy as np
import pytest
from PIL import Image

from nnlite.data import (MNIST, SVHN, DataLoader, ImageFolderWithLabels, MJSynth, load_lexicon,
                         read_idx, read_image)


def _save(path, array, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), mode=mode).save(path)


def _half_black(height, width):
    """Black left half, white right half."""
    image = np.full((height, width), 255, np.uint8)
    image[:, :width // 2] = 0
    return image


# ---------------------------------------------------------------- read_image
# Every kind of file must come back as the picture a viewer shows, in [0, 1]:
# training images (the datasets) and users' images (load_image) share read_image.

def test_read_image_scales_16_bit_grey_by_its_bit_depth(tmp_path):
    levels = np.array([[0, 1000, 32768, 65535]], np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")  # a 16-bit greyscale PNG
    expected = [[0.0, 1000 / 65535, 32768 / 65535, 1.0]]
    grey = read_image(tmp_path / "deep.png")
    assert grey.dtype == np.float32
    np.testing.assert_allclose(grey, expected, rtol=1e-6)
    colour = read_image(tmp_path / "deep.png", grey=False)
    assert colour.shape == (1, 4, 3)
    np.testing.assert_allclose(colour, np.repeat(np.array(expected)[..., None], 3, 2), rtol=1e-6)


def test_read_image_16_bit_grey_colour_key_is_white(tmp_path):
    levels = np.array([[0, 1000, 30000]], np.uint16)
    Image.fromarray(levels).save(tmp_path / "keyed.png", transparency=1000)
    np.testing.assert_allclose(read_image(tmp_path / "keyed.png"), [[0.0, 1.0, 30000 / 65535]],
                               rtol=1e-6)


def _glyph_on_transparency(mode):
    """A 2x3 picture: transparent background (its colour black, as many tools
    leave it), an opaque black pixel, and a half-transparent black one."""
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0, 3] = 255
    rgba[0, 1, 3] = 51  # 20 % opaque black: 80 % of the white shows through
    image = Image.fromarray(rgba, "RGBA")
    return image if mode == "RGBA" else image.convert(mode)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
@pytest.mark.parametrize("grey", [True, False])
def test_read_image_composites_transparency_on_white(tmp_path, mode, grey):
    _glyph_on_transparency(mode).save(tmp_path / "glyph.png")
    image = read_image(tmp_path / "glyph.png", grey=grey)
    expected = np.array([[0.0, 0.8, 1.0], [1.0, 1.0, 1.0]])
    if not grey:
        expected = np.repeat(expected[..., None], 3, 2)
    np.testing.assert_allclose(image, expected, atol=1 / 255)


def test_read_image_palette_and_colour_key_transparency_is_white(tmp_path):
    palette = Image.new("P", (3, 1))
    palette.putpalette([0, 0, 0, 0, 0, 0, 255, 0, 0])  # index 0 and 1 black, 2 red
    palette.putdata([0, 1, 2])
    palette.save(tmp_path / "palette.png", transparency=0)  # index 0 see-through
    np.testing.assert_allclose(read_image(tmp_path / "palette.png", grey=False),
                               [[[1, 1, 1], [0, 0, 0], [1, 0, 0]]])
    keyed = Image.fromarray(np.array([[[0, 0, 0], [9, 9, 9]]], np.uint8), "RGB")
    keyed.save(tmp_path / "keyed.png", transparency=(0, 0, 0))  # black is see-through
    np.testing.assert_allclose(read_image(tmp_path / "keyed.png"), [[1.0, 9 / 255]], atol=1e-6)


def test_read_image_one_bit_palette_and_cmyk(tmp_path):
    bits = Image.fromarray(np.array([[0, 1, 1, 0]], bool))
    bits.save(tmp_path / "bits.png")  # mode "1"
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png"), [[0, 1, 1, 0]])
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 255, 255, 0, 0, 255])
    palette.putdata([0, 1])
    palette.save(tmp_path / "palette.png")
    np.testing.assert_allclose(read_image(tmp_path / "palette.png", grey=False),
                               [[[1, 1, 1], [0, 0, 1]]])
    cmyk = Image.new("CMYK", (16, 8), (0, 0, 0, 0))  # white paper
    cmyk.paste((0, 0, 0, 255), (0, 0, 8, 8))  # black ink on the left half
    cmyk.save(tmp_path / "cmyk.jpg", quality=95)
    image = read_image(tmp_path / "cmyk.jpg")
    assert image[:, :6].max() < 0.05 and image[:, 10:].min() > 0.95


def test_read_image_applies_the_exif_orientation(tmp_path):
    stored = np.zeros((2, 3), np.uint8)
    stored[0, 0] = 255  # top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: viewers rotate 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "turned.png", exif=exif)
    shown = read_image(tmp_path / "turned.png")
    assert shown.shape == (3, 2)
    np.testing.assert_array_equal(shown, [[0, 1], [0, 0], [0, 0]])  # now top-right


def test_read_image_float_pixels_in_range_or_refused(tmp_path):
    Image.fromarray(np.array([[0.25, 0.5, 1.0]], np.float32)).save(tmp_path / "unit.tif")
    np.testing.assert_allclose(read_image(tmp_path / "unit.tif"), [[0.25, 0.5, 1.0]])
    Image.fromarray(np.array([[0.0, 300.0]], np.float32)).save(tmp_path / "wide.tif")
    with pytest.raises(ValueError, match=r"wide.tif.*outside \[0, 1\]"):
        read_image(tmp_path / "wide.tif")
    Image.fromarray(np.array([[0, 70000]], np.int32)).save(tmp_path / "int32.tif")
    with pytest.raises(ValueError, match=r"int32.tif.*32-bit integer"):
        read_image(tmp_path / "int32.tif")


# ---------------------------------------------------------------- MJSynth

def _mjsynth(tmp_path):
    _save(tmp_path / "1" / "2" / "7_Hello_123.jpg", _half_black(31, 60))
    _save(tmp_path / "1" / "3" / "8_world_9.jpg", np.full((32, 90), 128, np.uint8))
    (tmp_path / "annotation_train.txt").write_text(
        "./1/2/7_Hello_123.jpg 123\n./1/3/8_world_9.jpg 9\n")
    return tmp_path


def test_mjsynth_labels_from_file_names_and_images(tmp_path):
    data = MJSynth(_mjsynth(tmp_path), height=32, width=100)
    assert len(data) == 2
    image, word = data[0]
    assert word == "Hello" and image.shape == (1, 32, 100) and image.dtype == np.float32
    assert image[0, :, :45].max() < 0.1 and image[0, :, 55:].min() > 0.9  # stretched
    assert data[1][1] == "world" and abs(data[1][0].mean() - 128 / 255) < 0.02
    padded = MJSynth(tmp_path, height=32, width=128, mode="pad")
    image = padded[0][0][0]
    # 31x60 scaled to height 32 is 62 wide: dark, white, then white padding
    assert image[:, :28].max() < 0.1 and image[:, 34:].min() > 0.9 and image.shape == (32, 128)
    batch = next(iter(DataLoader(data, 2)))
    assert batch[0].shape == (2, 1, 32, 100) and batch[1] == ["Hello", "world"]


def test_mjsynth_bad_paths_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder .*nowhere"):
        MJSynth(tmp_path / "nowhere")
    root = _mjsynth(tmp_path)
    with pytest.raises(FileNotFoundError, match="annotation_val.txt"):
        MJSynth(root, split_file="annotation_val.txt")
    (root / "bad.txt").write_text("./1/2/7_Hello_123.jpg 123\njunk\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected"):
        MJSynth(root, split_file="bad.txt")
    (root / "noword.txt").write_text("./1/2/hello.jpg 4\n")
    with pytest.raises(ValueError, match=r"noword.txt:1: .*'hello.jpg' is not"):
        MJSynth(root, split_file="noword.txt")
    (root / "missing.txt").write_text("./9/9/1_gone_2.jpg 2\n")
    with pytest.raises(FileNotFoundError, match="1_gone_2.jpg"):
        MJSynth(root, split_file="missing.txt")[0]
    (root / "1" / "2" / "5_broken_6.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "corrupt.txt").write_text("./1/2/5_broken_6.jpg 6\n")
    with pytest.raises(ValueError, match="cannot decode image file .*5_broken_6.jpg"):
        MJSynth(root, split_file="corrupt.txt")[0]


# ---------------------------------------------------------------- image folder

def test_image_folder_with_labels(tmp_path):
    _save(tmp_path / "a.png", _half_black(20, 40))
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0] = 255
    _save(tmp_path / "sub" / "b.png", rgb, mode="RGB")
    (tmp_path / "labels.txt").write_text("a.png\tnew york\nsub/b.png red\n\n")
    data = ImageFolderWithLabels(tmp_path)
    assert len(data) == 2 and data[0][1] == "new york" and data[1][1] == "red"
    assert data[0][0].shape == (1, 20, 40) and data[0][0][0, 0, 0] == 0
    colour = ImageFolderWithLabels(tmp_path, grey=False, height=8, width=16)
    image = colour[1][0]
    assert image.shape == (3, 8, 16) and image[0].min() == 1 and image[1:].max() == 0


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels file"):
        ImageFolderWithLabels(tmp_path)
    (tmp_path / "labels.txt").write_text("ghost.png cat\n")
    with pytest.raises(FileNotFoundError, match=r"labels.txt:1 names 'ghost.png'"):
        ImageFolderWithLabels(tmp_path)
    (tmp_path / "labels.txt").write_text("lonely.png\n")
    with pytest.raises(ValueError, match=r"labels.txt:1: expected 'filename<TAB>label'"):
        ImageFolderWithLabels(tmp_path)
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "labels.txt").write_text("x.png dog\n")
    with pytest.raises(ValueError, match="cannot decode image file .*x.png"):
        ImageFolderWithLabels(tmp_path)[0]


# ---------------------------------------------------------------- labels files

LABELS = "a.png\tcafé\nsub/b.png naïve\n"


# Python's "utf-16" and "utf-32" codecs write a byte-order mark, as Notepad
# and Excel's "Unicode text" do.
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom",
                                      "utf-32"])
def test_labels_file_encodings_marked_by_a_bom_are_decoded(tmp_path, encoding):
    _save(tmp_path / "a.png", _half_black(4, 4))
    _save(tmp_path / "sub" / "b.png", _half_black(4, 4))
    if encoding == "utf-16-be-bom":
        raw = b"\xfe\xff" + LABELS.encode("utf-16-be")
    else:
        raw = LABELS.encode(encoding)
    (tmp_path / "labels.txt").write_bytes(raw)
    data = ImageFolderWithLabels(tmp_path)
    assert data.labels == ["café", "naïve"]
    assert data.paths == [os.path.join(tmp_path, "a.png"), os.path.join(tmp_path, "sub/b.png")]


def test_labels_file_in_another_encoding_names_file_line_and_encoding(tmp_path):
    _save(tmp_path / "a.png", _half_black(4, 4))
    (tmp_path / "labels.txt").write_bytes("a.png ok\na.png café\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"labels.txt:2: cannot decode byte 0xe9 as UTF-8"):
        ImageFolderWithLabels(tmp_path)
    # UTF-16 without its byte-order mark cannot be told from other bytes
    (tmp_path / "labels.txt").write_bytes("a.png x\n".encode("utf-16-le"))
    with pytest.raises(ValueError, match=r"labels.txt:1: .*NUL.*UTF-16"):
        ImageFolderWithLabels(tmp_path)


def test_mjsynth_annotation_with_a_bom_reads_its_first_path(tmp_path):
    root = _mjsynth(tmp_path)
    (root / "bom.txt").write_bytes("./1/2/7_Hello_123.jpg 123\n".encode("utf-8-sig"))
    data = MJSynth(root, split_file="bom.txt")
    assert data.paths == [str(root / "1" / "2" / "7_Hello_123.jpg")]
    assert data[0][1] == "Hello"
    (root / "latin.txt").write_bytes("./1/2/7_Hello_123.jpg 123\n./1/2/7_é_1.jpg 1\n"
                                     .encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.txt:2: cannot decode byte 0xe9 as UTF-8"):
        MJSynth(root, split_file="latin.txt")


def test_lexicon_files_get_the_same_decoding(tmp_path):
    (tmp_path / "words.txt").write_bytes("\ncafé\r\nnaïve\n".encode("utf-16"))
    assert load_lexicon(tmp_path / "words.txt") == ["café", "naïve"]
    (tmp_path / "latin.txt").write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.txt:1: cannot decode byte 0xe9 as UTF-8"):
        load_lexicon(tmp_path / "latin.txt")


# ---------------------------------------------------------------- MNIST

def _idx(values, type_code=0x08):
    header = bytes([0, 0, type_code, values.ndim]) + struct.pack(">" + "I" * values.ndim,
                                                                 *values.shape)
    return header + values.astype(">u1" if type_code == 0x08 else ">i4").tobytes()


def _mnist(root, prefix="train", gz=True, count=3):
    images = np.arange(count * 28 * 28, dtype=np.int64).reshape(count, 28, 28) % 256
    labels = np.arange(count) % 10
    for name, array in ((f"{prefix}-images-idx3-ubyte", images),
                        (f"{prefix}-labels-idx1-ubyte", labels)):
        data = _idx(array)
        if gz:
            (root / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files(tmp_path, gz):
    images, labels = _mnist(tmp_path, "t10k", gz=gz)
    data = MNIST(tmp_path, train=False)
    assert len(data) == 3 and np.array_equal(data.images, images)
    assert data.labels.tolist() == [0, 1, 2]
    image, label = data[2]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32 and label == 2
    assert np.allclose(image[0] * 255, images[2])


def test_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        MNIST(tmp_path)
    _mnist(tmp_path, gz=False)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-100])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte' is truncated: shape "
                                         r"\(3, 28, 28\) needs 2352 bytes of data, found 2252"):
        MNIST(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"PK\x03\x04" + raw[4:])
    with pytest.raises(ValueError, match="does not start with an idx header"):
        MNIST(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.arange(4) % 10))
    with pytest.raises(ValueError, match=r"expected \(3,\) labels for the 3 images"):
        MNIST(tmp_path)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="bad.gz' cannot be read"):
        read_idx(tmp_path / "bad.gz")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="truncated inside its header"):
        read_idx(tmp_path / "short")


def _idx_typed(values, type_code, dtype):
    header = bytes([0, 0, type_code, values.ndim]) + struct.pack(">" + "I" * values.ndim,
                                                                 *values.shape)
    return header + values.astype(dtype).tobytes()


@pytest.mark.parametrize("type_code, dtype, labels", [
    (0x09, ">i1", [0, -1, 2]),       # signed bytes: -1 used to pass as a label
    (0x0D, ">f4", [0.0, 1.7, 2.0]),  # floats: 1.7 used to become 1
    (0x0C, ">i4", [0, 1, 2]),        # in range, but not MNIST's unsigned bytes
])
def test_mnist_refuses_labels_that_are_not_unsigned_bytes(tmp_path, type_code, dtype, labels):
    _mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(
        _idx_typed(np.array(labels), type_code, dtype))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte' holds .* labels; expected "
                                         r"unsigned bytes \(idx type 0x08\)"):
        MNIST(tmp_path)


def test_mnist_refuses_labels_outside_0_to_9(tmp_path):
    _mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.array([0, 10, 255])))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte' has labels 10, 255 "
                                         r"at 1, 2; digits are 0-9"):
        MNIST(tmp_path)


@pytest.mark.parametrize("dims", [(2 ** 32 - 1,) * 3, (65536,) * 4, (2 ** 31, 2 ** 31, 4)])
def test_idx_header_dimensions_larger_than_the_file_are_refused(tmp_path, dims):
    """(65536,) * 4 multiplies to 2**64, which wraps to 0 in int64 and let an
    empty file through to a raw reshape error."""
    path = tmp_path / "huge-idx"
    path.write_bytes(bytes([0, 0, 8, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims))
    size = 1
    for dim in dims:
        size *= dim
    with pytest.raises(ValueError, match=rf"huge-idx' is truncated: shape {re.escape(str(dims))} "
                                         rf"needs {size} bytes of data, found 0"):
        read_idx(path)


# ---------------------------------------------------------------- SVHN

def _write_digit_struct(path, entries, group_name="digitStruct"):
    """MATLAB v7.3 layout: /digitStruct/name and /bbox are (N, 1) reference
    arrays into #refs#; a field with one digit is a (1, 1) number, with more
    a (k, 1) array of references to (1, 1) numbers."""
    import h5py
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        group = f.create_group(group_name)
        names, boxes = [], []
        for i, (name, digits) in enumerate(entries):
            chars = refs.create_dataset(f"n{i}", data=np.array([[ord(c)] for c in name],
                                                                   np.uint16))
            names.append(chars.ref)
            box = refs.create_group(f"b{i}")
            for key in ("height", "label", "left", "top", "width"):
                values = [d[key] for d in digits]
                if len(values) == 1:
                    box.create_dataset(key, data=np.array([[values[0]]], np.float64))
                else:
                    cells = [refs.create_dataset(f"b{i}{key}{k}",
                                                 data=np.array([[v]], np.float64)).ref
                             for k, v in enumerate(values)]
                    box.create_dataset(key, data=np.array(cells, dtype=h5py.ref_dtype)[:, None])
            boxes.append(box.ref)
        group.create_dataset("name", data=np.array(names, dtype=h5py.ref_dtype)[:, None])
        group.create_dataset("bbox", data=np.array(boxes, dtype=h5py.ref_dtype)[:, None])


def _svhn(root):
    folder = root / "train"
    folder.mkdir()
    _save(folder / "1.png", np.full((40, 80, 3), 200, np.uint8), mode="RGB")
    _save(folder / "2.png", np.full((64, 64, 3), 50, np.uint8), mode="RGB")
    _write_digit_struct(folder / "digitStruct.mat", [
        ("1.png", [dict(label=1, left=10, top=5, width=12, height=20),
                   dict(label=10, left=24, top=7, width=13, height=22)]),  # 10 = digit 0
        ("2.png", [dict(label=5, left=8, top=4, width=30, height=40)])])
    return root


def test_svhn_reads_digit_struct_and_images(tmp_path):
    data = SVHN(_svhn(tmp_path), "train")
    assert len(data) == 2
    image, labels, box = data[0]
    assert image.shape == (3, 128, 256) and image.dtype == np.float32
    assert np.allclose(image, 200 / 255, atol=1e-6)
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0, 10, 10, 10, 10]
    # union box: x 10..37, y 5..29 in the 80x40 image; scaled by 256/80 and 128/40
    assert box.dtype == np.float32
    np.testing.assert_allclose(box, [23.5 * 3.2, 17 * 3.2, 24 * 3.2, 27 * 3.2], rtol=1e-6)
    _, labels, box = data[1]
    assert labels.tolist() == [5, 10, 10, 10, 10, 10]
    np.testing.assert_allclose(box, [23 * 4, 24 * 2, 40 * 2, 30 * 4], rtol=1e-6)
    original = SVHN(tmp_path, "train", size=None)
    image, _, box = original[0]
    assert image.shape == (3, 40, 80)
    np.testing.assert_allclose(box, [23.5, 17, 24, 27])


def test_svhn_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder .*test"):
        SVHN(tmp_path, "test")
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="digitStruct.mat"):
        SVHN(tmp_path, "train")
    (tmp_path / "train" / "digitStruct.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        SVHN(tmp_path, "train")
    _write_digit_struct(tmp_path / "train" / "digitStruct.mat",
                        [("1.png", [dict(label=3, left=1, top=1, width=2, height=2)])],
                        group_name="somethingElse")
    with pytest.raises(ValueError, match="has no 'digitStruct' group"):
        SVHN(tmp_path, "train")
    _write_digit_struct(tmp_path / "train" / "digitStruct.mat",
                        [("1.png", [dict(label=3, left=1, top=1, width=2, height=2)] * 3)])
    with pytest.raises(ValueError, match="'1.png' has 3 digits, more than num_positions=2"):
        SVHN(tmp_path, "train", num_positions=2)
    data = SVHN(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="1.png"):
        data[0]

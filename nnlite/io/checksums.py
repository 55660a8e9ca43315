"""CRC-32 checksums of the arrays of a checkpoint.

HDF5 checks nothing it reads back: a flipped bit in an array's data loads as a
different weight (the adversarial review found values up to 7.9e37), and one
in its datatype message can turn little-endian floats into big-endian ones
with the same bytes. So the saver records, per dataset, its dtype, shape and
the CRC-32 of its values in little-endian order; the JSON texts (metadata,
optimiser settings) are stored as uint8 datasets and so are covered the same
way. The record is itself JSON, with a CRC-32 of its own. CRC-32 detects every
single-bit error and every burst of up to 32 bits; it guards against
corruption, not against someone forging a file.
"""
import json
import zlib

import numpy as np


def array_crc32(array):
    """CRC-32 of the values of `array` as little-endian bytes in C order, so a
    byte-order change of the stored datatype changes the checksum too."""
    array = np.asarray(array)
    little = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
    return zlib.crc32(little.reshape(-1).view(np.uint8))


def text_array(text):
    """`text` as the uint8 array it is stored as (UTF-8)."""
    return np.frombuffer(text.encode("utf8"), dtype=np.uint8)


def array_text(array):
    return np.asarray(array, dtype=np.uint8).tobytes().decode("utf8")


class ChecksumRecord:
    """What the saver fills in: one entry per dataset, by its HDF5 path."""

    def __init__(self):
        self.arrays = {}

    def add(self, dataset_name, array):
        array = np.asarray(array)
        self.arrays[dataset_name] = {"dtype": array.dtype.str, "shape": list(array.shape),
                                     "crc32": array_crc32(array)}

    def text(self):
        """(the record as JSON text, its CRC-32)."""
        text = json.dumps({"arrays": self.arrays}, sort_keys=True)
        return text, zlib.crc32(text.encode("utf8"))


def parse_record(text_bytes, crc):
    """The record from its stored bytes and CRC-32; ValueError naming what is
    wrong if they do not match or it is not a record."""
    if not isinstance(crc, int) or zlib.crc32(text_bytes) != crc:
        raise ValueError("the checksum record does not match its own checksum")
    record = json.loads(text_bytes.decode("utf8"))
    arrays = record.get("arrays") if isinstance(record, dict) else None
    if not isinstance(arrays, dict) or not all(
            isinstance(entry, dict) and {"dtype", "shape", "crc32"} <= set(entry)
            for entry in arrays.values()):
        raise ValueError("the checksum record is not {'arrays': {name: {dtype, shape, crc32}}}")
    return record

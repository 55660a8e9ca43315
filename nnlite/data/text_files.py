"""Text files users hand to nnlite (labels files, annotation lists, lexicons):
decoded by their byte-order mark, else as UTF-8, with errors that name the
file, the line and the encoding expected.

Editors on Windows save "Unicode" text as UTF-16 with a byte-order mark and
often put a UTF-8 BOM before UTF-8; read as plain UTF-8 the first would fail
with a bare UnicodeDecodeError and the second would glue '\ufeff' to the
first file name.
"""
import codecs

# UTF-32 first: its little-endian mark begins with UTF-16's.
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                    (codecs.BOM_UTF16_BE, "utf-16"))
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16",
                  "utf-32": "UTF-32"}


def detect_encoding(data):
    """The codec for `data` (bytes): the one its byte-order mark names (the
    codec then drops the mark), else UTF-8."""
    for mark, encoding in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return encoding
    return "utf-8"


def read_lines(path, what):
    """The lines of the text file `path`, without line ends (\\n, \\r\\n or \\r,
    as open() splits them). `what` starts error messages ("MJSynth")."""
    with open(path, "rb") as handle:
        data = handle.read()
    encoding = detect_encoding(data)
    name = ENCODING_NAMES[encoding]
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = _line_of(data[:error.start], encoding)
        bad = data[error.start:error.end]
        raise ValueError(f"{what}: {path}:{line}: cannot decode byte 0x{bad[:1].hex()} as "
                         f"{name} ({error.reason}); save the file as UTF-8") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # the final line end ends a line; it does not start one
    for number, line in enumerate(lines, 1):
        if "\x00" in line:
            # valid UTF-8, but no text file holds NUL: UTF-16 without its mark
            raise ValueError(f"{what}: {path}:{number}: holds a NUL character; is it UTF-16 "
                             f"without a byte-order mark? Save the file as UTF-8 (or UTF-16 "
                             f"with its mark)")
    return lines


def _line_of(prefix, encoding):
    """The 1-based line number at the end of `prefix`, the bytes decoded so far."""
    return prefix.decode(encoding, errors="replace").count("\n") + 1

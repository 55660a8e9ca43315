"""The font families nnlite renders text in, all from packages it already
depends on: matplotlib's bundled TrueType fonts and Pillow's built-in face.

Families are listed by hand, not read from the files: matplotlib's Computer
Modern files each name their own family (cmr10, cmb10, cmti10 are one design
in three styles), and several files map the letters to symbols (cmsy10,
cmex10, LastResortHE, the STIXSize* and STIXNonUnicode faces), which a
character-map check cannot tell from letters. Left out on purpose: the
DejaVu *Display faces (no letters), cmmi10 (math italic with old-style
digits, not a text face).

HELD_OUT_FAMILIES never appear in training data: one serif, one sans-serif
and one monospaced family, each with a family of its kind left in training,
so the "unseen fonts" benchmark (nnlite.data.benchmark) measures how the
reader generalises to a new design of a familiar kind.
"""
import os

# A face that is not a file: Pillow's built-in font (Aileron Regular, Pillow >= 10.1).
PILLOW_DEFAULT = "pillow:default"

FAMILIES = {
    "DejaVu Sans": ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique",
                    "DejaVuSans-BoldOblique"),
    "DejaVu Sans Mono": ("DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSansMono-Oblique",
                         "DejaVuSansMono-BoldOblique"),
    "DejaVu Serif": ("DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic",
                     "DejaVuSerif-BoldItalic"),
    "STIX General": ("STIXGeneral", "STIXGeneralBol", "STIXGeneralItalic",
                     "STIXGeneralBolIta"),
    "Computer Modern Roman": ("cmr10", "cmb10", "cmti10"),
    "Computer Modern Sans": ("cmss10",),
    "Computer Modern Typewriter": ("cmtt10",),
    "Aileron": (PILLOW_DEFAULT,),
}
HELD_OUT_FAMILIES = ("DejaVu Serif", "Computer Modern Sans", "Computer Modern Typewriter")
TRAINING_FAMILIES = tuple(name for name in FAMILIES if name not in HELD_OUT_FAMILIES)


def font_directory():
    """matplotlib's bundled TrueType folder."""
    import matplotlib
    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf")


def check_families(families):
    """`families` (names of FAMILIES) as a tuple, with a clear error for an unknown one."""
    if isinstance(families, str):
        families = (families,)
    families = tuple(families)
    if not families:
        raise ValueError("fonts: the list of font families is empty")
    unknown = [name for name in families if name not in FAMILIES]
    if unknown:
        raise ValueError(f"fonts: unknown font families {unknown}; known: {list(FAMILIES)}")
    return families


def faces(families):
    """The face ids (file paths, or PILLOW_DEFAULT) of `families`, in order."""
    found = []
    for name in check_families(families):
        for face in FAMILIES[name]:
            found.append(face if face == PILLOW_DEFAULT
                         else os.path.join(font_directory(), face + ".ttf"))
    return found


def family_of(face):
    """The FAMILIES name a face id (path or PILLOW_DEFAULT) belongs to, or None."""
    stem = face if face == PILLOW_DEFAULT else os.path.splitext(os.path.basename(face))[0]
    for name, members in FAMILIES.items():
        if stem in members:
            return name
    return None


def load_font(face, size):
    """A Pillow FreeTypeFont of face id `face` at `size` pixels."""
    from PIL import ImageFont
    if face == PILLOW_DEFAULT:
        font = ImageFont.load_default(size)
        if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow without FreeType
            raise RuntimeError("fonts: Pillow's built-in font needs Pillow >= 10.1 built "
                               "with FreeType")
        return font
    try:
        return ImageFont.truetype(face, size)
    except OSError as error:
        raise ValueError(f"fonts: cannot load font file {face}: {error}") from None

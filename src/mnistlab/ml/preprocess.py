"""Turn people's digit images into MNIST-style 28x28 inputs.

One function, `to_mnist`, used by `mnistlab predict` and the web page alike,
following how MNIST itself was made: grayscale; white ink on black (a light
background is detected and inverted); cropped to the ink's bounding box;
scaled so the longer side is 20 px, keeping the aspect ratio; placed in a
28x28 frame so that the centre of mass sits at the centre; values in [0, 1].

`load_image` reads PNG, JPEG, BMP, GIF, TIFF, WebP (anything Pillow reads)
and `.npy`, in any mode and bit depth, each decoded once, and only after its
header has said what decoding it will cost. `Limits` bound that cost: the
command line's (`COMMAND_LINE`) take any format up to 25 megapixels; the
server's (`SERVER`) hold every request, whatever its upload, to tens of
milliseconds of CPU and a few MiB (benchmarks/hostile_uploads.py measures
them). A JPEG larger than PHOTO_PIXELS is decoded at 1/2, 1/4 or 1/8 of its
size by libjpeg's DCT scaling, on both: a 12-megapixel photo at 500 x 375.
"""

import collections
import dataclasses
import io
import re

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnistlab.core import fileio
from mnistlab.core.errors import CorruptImage, ImageError, ImageTooComplex, ImageTooLarge, NoDigit, NotAnImage

__all__ = ["COMMAND_LINE", "SERVER", "ImageError", "Limits", "load_image", "prepare_file", "save_input_png", "to_mnist"]

FRAME = 28
BOX = 20
MAX_PIXELS = 25_000_000  # the command line's bound on the pixels decoded (5000 x 5000): far above any digit photo, far below a bomb
# A larger JPEG is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling: a fraction of
# the work, not a resampling after it), to at most this where 1/8 is enough: a 12 or 16 megapixel
# photo at 1/8 (500 x 375, 576 x 432) still draws its digit with a hundred pixels or more.
PHOTO_PIXELS = 250_000
# The most EXIF read for a photo's orientation: JPEG's own bound on it (one segment). Pillow parses
# it entry by entry in Python (a 350 KB one in a PNG: 40 ms); a larger one is not read.
MAX_EXIF_BYTES = 65_535
INK_THRESHOLD = 0.1  # of the contrast range: what counts as ink for the bounding box
MIN_CONTRAST = 0.1  # below this the image is taken as blank
DENOISE_MIN_SIDE = 56  # images at least this large are median-filtered before analysis
OPAQUE = 250  # an alpha of at least this (0.98 of 255) everywhere: the image is read by its colours


@dataclasses.dataclass(frozen=True)
class Limits:
    """What `load_image` decodes at most, each checked from the file's header before any pixel is decoded (None: no bound)."""

    reader: str  # who reads, as a refusal names it
    pixels: int  # pixels decoded (a JPEG's after its DCT scaling): decoding and to_mnist cost 20-40 ns each
    formats: tuple | None = None  # Pillow's formats read (None: every one it has)
    formats_named: str = "PNG, JPEG, BMP, GIF, TIFF, WebP"  # the same, as a refusal names them
    chunks: int | None = None  # a PNG's chunks, a JPEG's markers: Pillow reads each one in Python
    # A JPEG's own size: however small its scale, libjpeg still reads every block of it (and its
    # bytes: about 10 ns each for a baseline JPEG).
    jpeg_pixels: int | None = None
    jpeg_scans: int | None = (
        None  # each scan of a JPEG is a pass over every block of the image, however few bytes it takes
    )
    # A progressive (or any multi-scan) JPEG: libjpeg holds every DCT coefficient of it (2 bytes a
    # pixel and channel, whatever the scale it decodes at), and it costs about four times a
    # baseline JPEG's CPU per byte.
    multi_scan_jpeg_pixels: int | None = None
    multi_scan_jpeg_bytes: int | None = None


COMMAND_LINE = Limits("mnistlab", MAX_PIXELS)
# The server's, per request (`mnistlab serve`, the lab's draw pages), measured by
# benchmarks/hostile_uploads.py (its results: benchmarks/hostile-uploads.json, on 2 cores): with
# these, the costliest uploads found under the 5 MB upload limit are answered or refused in 40 ms
# of CPU (PNG, WebP) to 56 ms (a 5 MB JPEG of noise: libjpeg reading its bytes, which the upload
# limit bounds), about half the 100 ms bound, and 36 MiB at most; a bomb is refused from its
# header in well under a millisecond. The page's canvas is 280 x 280; a phone photo of up to 16
# megapixels is read at 1/8 scale (a 12 megapixel one: 31 ms). GIF, TIFF and BMP are left
# to the command line: Pillow reads parts of their headers in Python, item by item, whatever their
# pixels (a GIF of a million empty comments: 0.4 s; a TIFF directory of 30,000 entries: 85 ms;
# an RLE-compressed BMP: 0.7 s).
SERVER = Limits(
    "the server",
    pixels=1_000_000,  # 1000 x 1000: a PNG of noise read by its alpha channel there costs 40 ms
    formats=("PNG", "JPEG", "WEBP"),  # JPEG takes MPO too, the JPEG of many phones (a second picture after the first)
    formats_named="PNG, JPEG, WebP",
    chunks=4096,  # a 5 MB PNG in libpng's 8 KiB chunks has 640
    jpeg_pixels=16_000_000,  # a 5 MB JPEG of noise that size: 56 ms; 64 megapixels: 73
    jpeg_scans=16,  # libjpeg's progressive JPEGs have 6 (gray) or 10 (colour)
    multi_scan_jpeg_pixels=4_000_000,  # 24 MiB of coefficients at most (three channels at full resolution)
    multi_scan_jpeg_bytes=1 << 20,  # 37 ms (a 12 megapixel progressive photo of 2.7 MB: 98)
)


def load_image(source, name=None, limits=COMMAND_LINE):
    """A 2-D float64 array in [0, 1] (0 = black) from a path or bytes, decoded once, within LIMITS.

    Transparent images (a drawing on a transparent canvas) are read by their
    alpha channel: what is opaque is ink, whatever its colour.
    """
    name = name or (str(source) if not isinstance(source, (bytes, bytearray)) else "image")
    if not isinstance(source, (bytes, bytearray)):
        payload = fileio.read_bytes(source, ImageError)
    else:
        payload = bytes(source)
    if not payload:
        raise ImageError(f"{name}: empty file")
    if payload[:6] == b"\x93NUMPY":
        return _from_npy(payload, name, limits)
    if payload[:8] == PNG_SIGNATURE:
        payload, header = _png_essentials(payload, name, limits)
        if header.plain:
            decoded = _from_libspng(payload, header, name)
            if decoded is not None:
                return decoded
    elif payload[:3] == JPEG_START and _walks_jpeg(limits):
        payload = _jpeg_within(payload, name, limits)
    return _from_image_bytes(payload, name, limits)


MAX_ASPECT = (
    16  # a digit or a photo of one is at most this much longer than wide; a 1,000,000 x 1 "image" is a resize bomb
)


def _oversized(width, height, limits):
    return width * height > limits.pixels or max(width, height) > MAX_ASPECT * max(min(width, height), 1)


def _too_large(name, width, height, limits, what):
    if width * height <= limits.pixels:
        return ImageTooLarge(
            f"{name}: {width} x {height} pixels is too long and thin: {limits.reader} reads images at most {MAX_ASPECT} times longer than wide; crop it to the digit"
        )
    return ImageTooLarge(
        f"{name}: {width} x {height} pixels is too large: {limits.reader} reads at most {limits.pixels:,} pixels of {what}; scale it down or crop it to the digit"
    )


# -- PNG: its chunks walked first ------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The chunks that make a PNG's pixels (and eXIf, its orientation, when no larger than JPEG's EXIF).
# The others (text, compressed or not, ICC profiles, APNG frames) are dropped unread: Pillow
# inflates up to 64 MB of compressed text, libspng more, from a 200 KB file, and neither changes
# a pixel for them.
PNG_PIXEL_CHUNKS = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")


class PngHeader(collections.namedtuple("PngHeader", "width height bit_depth colour_type interlaced transparency exif")):
    __slots__ = ()

    @property
    def plain(self):
        """What a canvas's toBlob gives: 8-bit gray, RGB or RGBA, no palette, no transparency chunk, no EXIF orientation (pyspng reads no gray and alpha)."""
        return (
            self.bit_depth == 8
            and self.colour_type in (0, 2, 6)
            and not self.interlaced
            and not self.transparency
            and not self.exif
        )


def refuse_at_a_glance(payload, name="upload", limits=None):
    """Refuse (ImageTooLarge) a PNG whose header alone says it is too large: a look at 24 bytes, no chunk walked,
    so that the server's front answers such an upload without passing it to a model worker."""
    if payload[:8] == PNG_SIGNATURE and payload[12:16] == b"IHDR" and len(payload) >= 24:
        width, height = int.from_bytes(payload[16:20], "big"), int.from_bytes(payload[20:24], "big")
        limits = limits or SERVER
        if _oversized(width, height, limits):
            raise _too_large(name, width, height, limits, "PNG")


def _png_essentials(payload, name, limits):
    """(the PNG with only the chunks that make its pixels, its header), walked by the chunks' lengths; refused if too large.

    Only each chunk's header is read here; nothing is inflated.
    """
    kept, position, count, header, dropped = [PNG_SIGNATURE], len(PNG_SIGNATURE), 0, None, False
    transparency = exif = False
    while position + 8 <= len(payload):
        length = int.from_bytes(payload[position : position + 4], "big")
        kind = payload[position + 4 : position + 8]
        end = position + 12 + length
        count += 1
        if limits.chunks is not None and count > limits.chunks:
            raise ImageTooComplex(
                f"{name}: a PNG of more than {limits.chunks:,} chunks; {limits.reader} reads at most {limits.chunks:,} (save it again with any image editor)"
            )
        if count == 1:
            if kind != b"IHDR" or length != 13 or end > len(payload):
                break
            fields = payload[position + 8 : position + 21]
            header = (
                int.from_bytes(fields[0:4], "big"),
                int.from_bytes(fields[4:8], "big"),
                fields[8],
                fields[9],
                fields[12] != 0,
            )
        if kind in PNG_PIXEL_CHUNKS or (kind == b"eXIf" and length <= MAX_EXIF_BYTES):
            kept.append(payload[position:end])
            transparency = transparency or kind == b"tRNS"
            exif = exif or kind == b"eXIf"
        else:
            dropped = True
        position = end
        if kind == b"IEND":
            break
    if header is None:
        raise CorruptImage(f"{name}: truncated or corrupt image (a PNG without its IHDR header)")
    header = PngHeader(*header, transparency, exif)
    if _oversized(header.width, header.height, limits):
        raise _too_large(name, header.width, header.height, limits, "PNG")
    return (b"".join(kept) if dropped else payload), header


def _from_libspng(payload, header, name):
    """A plain PNG (`PngHeader.plain`) decoded by libspng, about twice as fast as Pillow; None without pyspng.

    The result is Pillow's, to the bit: the same pixels, then Pillow's own
    conversions (`_to_gray`), transparency included. pyspng is an optional part
    of the 'serve' extra; without it Pillow decodes. A PNG libspng cannot decode
    is refused here, not decoded a second time by Pillow.
    """
    try:
        import pyspng
    except ImportError:
        return None
    try:
        pixels = pyspng.load(payload)
    except Exception as error:  # noqa: BLE001 - pyspng raises RuntimeError, ValueError...: truncated or corrupt
        raise CorruptImage(f"{name}: truncated or corrupt image ({str(error).rsplit(': ', 1)[-1]})") from None
    height, width = header.height, header.width
    mode = {(height, width): "L", (height, width, 1): "L", (height, width, 3): "RGB", (height, width, 4): "RGBA"}.get(
        pixels.shape
    )
    if pixels.dtype != np.uint8 or mode is None:
        return None  # never seen: a pyspng that answers otherwise costs a second decode, not a wrong answer
    if mode == "L":
        return pixels.reshape(height, width) / 255.0
    return _to_gray(Image.frombuffer(mode, (width, height), np.ascontiguousarray(pixels), "raw", mode, 0, 1))


# -- JPEG: its markers walked first (where the limits ask) ------------------

JPEG_START = b"\xff\xd8\xff"
# The next marker from a position: not a stuffed FF (FF 00) nor a restart (FF D0-D7), which are part
# of a scan's data, nor a fill byte (FF FF: the marker follows). A literal first byte: the regular
# expression engine skips to each FF in C (1.5 ms through a 3 MB photo; 17 with "\xff+").
JPEG_MARKER = re.compile(rb"\xff([^\x00\xd0-\xd7\xff])")
JPEG_FRAMES = (
    0xC0,
    0xC1,
    0xC2,
)  # baseline, extended and progressive: the Huffman-coded DCT processes, which libjpeg decodes scaled
JPEG_OTHER_FRAMES = (
    0xC3,
    0xC5,
    0xC6,
    0xC7,
    0xC9,
    0xCA,
    0xCB,
    0xCD,
    0xCE,
    0xCF,
)  # lossless, hierarchical, arithmetic-coded
PHOTOSHOP_SEGMENT = b"Photoshop 3.0\x00"  # APP13: Pillow walks its resource blocks in Python, 12 bytes each at least


def _walks_jpeg(limits):
    return any(
        bound is not None
        for bound in (
            limits.chunks,
            limits.jpeg_pixels,
            limits.jpeg_scans,
            limits.multi_scan_jpeg_pixels,
            limits.multi_scan_jpeg_bytes,
        )
    )


def _jpeg_within(payload, name, limits):
    """The JPEG (its Photoshop segments dropped), refused if LIMITS say it costs too much, from its markers alone.

    Walks the first picture's markers by their segments' lengths, skipping scan
    data by a regular expression (in C); nothing is decoded.
    """
    position, markers, frame, scans, end = 2, 0, None, 0, len(payload)
    kept, copied = [], 0  # what is kept of the payload: the slices before each dropped segment, then the rest
    while True:
        found = JPEG_MARKER.search(payload, position)
        if found is None:
            break  # truncated: the decoder says so
        markers += 1
        if limits.chunks is not None and markers > limits.chunks:
            raise ImageTooComplex(
                f"{name}: a JPEG of more than {limits.chunks:,} segments; {limits.reader} reads at most {limits.chunks:,} (save it again with any image editor)"
            )
        marker, start = found.group(1)[0], found.end()
        if marker == 0xD9:  # the end of the first picture (an MPO's next one follows)
            end = start
            break
        if marker in (0x01, 0xD8):  # markers without a segment
            position = start
            continue
        position = start + int.from_bytes(payload[start : start + 2], "big")
        if marker == 0xED and payload[start + 2 : start + 2 + len(PHOTOSHOP_SEGMENT)] == PHOTOSHOP_SEGMENT:
            kept.append(payload[copied : found.start()])
            copied = position
        elif marker in JPEG_FRAMES or marker in JPEG_OTHER_FRAMES:
            frame = (marker, payload[start + 2 : position])
        scans += marker == 0xDA
    if frame is None or len(frame[1]) < 6:
        raise CorruptImage(f"{name}: truncated or corrupt image (a JPEG without its frame header)")
    marker, segment = frame
    if marker not in JPEG_FRAMES:
        raise ImageTooComplex(
            f"{name}: a lossless, hierarchical or arithmetic-coded JPEG; {limits.reader} reads baseline and progressive JPEG (what cameras and browsers write)"
        )
    height, width = int.from_bytes(segment[1:3], "big"), int.from_bytes(segment[3:5], "big")
    if limits.jpeg_pixels is not None and width * height > limits.jpeg_pixels:
        raise ImageTooLarge(
            f"{name}: a JPEG of {width} x {height} pixels is too large: {limits.reader} reads JPEG of at most {limits.jpeg_pixels:,} pixels (decoded at 1/8 scale); scale it down or crop it to the digit"
        )
    if limits.jpeg_scans is not None and scans > limits.jpeg_scans:
        raise ImageTooComplex(
            f"{name}: a JPEG of {scans:,} scans; {limits.reader} reads at most {limits.jpeg_scans} (save it again as baseline JPEG)"
        )
    if marker == 0xC2 or scans > 1:
        if limits.multi_scan_jpeg_pixels is not None and width * height > limits.multi_scan_jpeg_pixels:
            raise ImageTooLarge(
                f"{name}: a progressive JPEG of {width} x {height} pixels is too large: {limits.reader} reads progressive JPEG of at most {limits.multi_scan_jpeg_pixels:,} pixels; save it as baseline JPEG or scale it down"
            )
        if limits.multi_scan_jpeg_bytes is not None and end > limits.multi_scan_jpeg_bytes:
            raise ImageTooLarge(
                f"{name}: a progressive JPEG of {end:,} bytes is too large: {limits.reader} reads progressive JPEG of at most {limits.multi_scan_jpeg_bytes // 1024:,} KiB; save it as baseline JPEG or scale it down"
            )
    return b"".join([*kept, payload[copied:]]) if kept else payload


def _jpeg_scale(width, height):
    """1, 2, 4 or 8: the least DCT scaling that brings a JPEG to PHOTO_PIXELS, else 8, the most there is."""
    for scale in (1, 2, 4, 8):
        if -(-width // scale) * -(-height // scale) <= PHOTO_PIXELS:
            return scale
    return 8


# -- every format: Pillow, after the size check ----------------------------


def _from_npy(payload, name, limits):
    stream = io.BytesIO(payload)
    try:
        # The shape from the header first: an array too large is refused before it is read.
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(
            np.lib.format.read_magic(stream)
        )
        shape = read_header(stream)[0] if read_header is not None else ()
        if len(shape) >= 2 and _oversized(shape[1], shape[0], limits):
            raise _too_large(name, shape[1], shape[0], limits, ".npy array")
        array = np.load(io.BytesIO(payload), allow_pickle=False)
    except ImageError:
        raise
    except Exception as error:  # truncated or malformed .npy
        raise CorruptImage(f"{name}: not a readable .npy array ({error})") from None
    if array.ndim >= 2 and _oversized(array.shape[1], array.shape[0], limits):
        raise _too_large(name, array.shape[1], array.shape[0], limits, ".npy array")
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., :3].mean(axis=-1) if array.shape[-1] != 1 else array[..., 0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageError(f"{name}: a .npy image must be 2-D (H, W) or (H, W, channels), got shape {array.shape}")
    if array.dtype == bool:
        return array.astype(np.float64)
    if np.issubdtype(array.dtype, np.integer):
        top = 255 if array.max(initial=0) <= 255 else np.iinfo(array.dtype).max
        return np.clip(array.astype(np.float64) / top, 0, 1)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageError(f"{name}: the array holds NaN or infinite values")
        return np.clip(array / (255.0 if array.max(initial=0) > 1.0 else 1.0), 0, 1).astype(np.float64)
    raise ImageError(f"{name}: unsupported .npy dtype {array.dtype}")


def _from_image_bytes(payload, name, limits):
    # The size guard reads the header's size before any pixel is decoded, per
    # call: no Pillow global is changed, so concurrent requests cannot undo
    # each other's limit. (Pillow's own, larger bomb check still applies.)
    try:
        with Image.open(io.BytesIO(payload), formats=limits.formats) as image:
            image.seek(0)  # first frame of a GIF or multi-page TIFF
            width, height = image.size
            what = "JPEG" if image.format == "MPO" else image.format
            if image.format in ("JPEG", "MPO"):
                scale = _jpeg_scale(width, height)
                if scale > 1:  # decoded at 1/SCALE by libjpeg, in gray: a fraction of the work
                    image.draft("L", (max(1, width // scale), max(1, height // scale)))
                    what = f"JPEG once decoded at 1/{scale} scale"
            if _oversized(image.width, image.height, limits):
                raise _too_large(name, width, height, limits, what)
            if len(image.info.get("exif") or b"") <= MAX_EXIF_BYTES:
                image = ImageOps.exif_transpose(image)  # photos taken sideways
            image.load()
            return _to_gray(image)
    except Image.DecompressionBombError:
        raise ImageTooLarge(
            f"{name}: image is too large (more than {limits.pixels:,} pixels); is it a decompression bomb?"
        ) from None
    except UnidentifiedImageError:
        raise NotAnImage(
            f"{name}: not an image {limits.reader} reads ({limits.formats_named}) nor a .npy array"
            + (
                ""
                if limits.formats is None
                else "; save it as PNG, or give it to mnistlab predict FILE, which reads GIF, TIFF and BMP too"
            )
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise CorruptImage(f"{name}: truncated or corrupt image ({error})") from None


def _to_gray(image):
    """Any Pillow mode -> 2-D float64 in [0, 1]."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA") and image.getchannel("A").getextrema()[0] >= OPAQUE:
        # Opaque throughout (the web page's canvas): the gray of its colours, read in one step.
        return _rgb_gray(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGB" and "transparency" in image.info):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float64) / 255.0
        if alpha.min() < OPAQUE / 255:
            # Ink is what is opaque: white-on-transparent and black-on-transparent alike.
            if alpha.mean() < 0.5:
                return alpha
            return _rgb_gray(image.convert("RGB"))
        image = image.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max(initial=0)
        bits_max = 65535.0 if image.mode.startswith("I;16") or top > 255 else 255.0
        if image.mode == "F":
            bits_max = 1.0 if top <= 1.0 else 255.0
        return np.clip(array / bits_max, 0, 1)
    if image.mode == "1":
        return np.asarray(image, dtype=np.float64)
    if image.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        image = image.convert("RGB")
    if image.mode == "RGB":
        return _rgb_gray(image)
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def _rgb_gray(image):
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def to_mnist(gray, name="image"):
    """MNIST-style preprocessing of a 2-D array in [0, 1]; returns (28x28 float32, info dict)."""
    gray = np.asarray(gray, dtype=np.float64)
    if gray.ndim != 2:
        raise ImageError(f"{name}: expected a 2-D grayscale image, got shape {gray.shape}")
    inverted = float(np.median(_border(gray))) > 0.5
    ink = 1.0 - gray if inverted else gray
    if min(ink.shape) >= DENOISE_MIN_SIDE and np.ptp(_border(ink)) > 0:
        # Photos and scans: a 3x3 median removes sensor and JPEG speckle
        # while keeping strokes, which are many pixels wide at this size.
        # A drawing on a clean canvas (a border of one value) has no speckle:
        # the filter is skipped, a third of a page request's time.
        ink = median3x3(ink)
    # Stretch the contrast between the paper (its median, plus 3 robust
    # standard deviations of its noise) and the darkest ink, so that a photo of
    # grey, noisy paper gives the clean black background of MNIST.
    border = _border(ink)
    background = float(np.median(border))
    noise = 1.4826 * float(np.median(np.abs(border - background)))
    floor = min(background + 3 * noise, 0.95)
    peak = float(ink.max())
    if peak - floor < MIN_CONTRAST:
        raise NoDigit(
            f"{name}: no digit found (the image is blank or has almost no contrast); draw or photograph a digit"
        )
    # The ink's bounding box first, then the stretch of that box alone: a drawing is a small
    # part of its canvas. (What passes the threshold after the stretch, found before it.)
    is_ink = ink > floor + INK_THRESHOLD * (peak - floor)  # one pass, no full-size temporaries
    rows = np.flatnonzero(is_ink.any(axis=1))
    columns = np.flatnonzero(is_ink.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    cropped = np.clip((ink[top:bottom, left:right] - floor) / (peak - floor), 0, 1)
    height, width = cropped.shape
    scale = BOX / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    if (new_height, new_width) == (height, width):
        patch = cropped  # already MNIST-sized: no resampling blur
    else:
        resized = Image.fromarray(cropped.astype(np.float32)).resize(
            (new_width, new_height), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR
        )
        patch = np.clip(np.asarray(resized, dtype=np.float64), 0, 1)
    # Centre of mass to pixel (14, 14), where MNIST's digits have theirs.
    total = patch.sum()
    row_centre = (patch.sum(axis=1) * np.arange(new_height)).sum() / total
    column_centre = (patch.sum(axis=0) * np.arange(new_width)).sum() / total
    offset_row = int(round(FRAME / 2 - row_centre))
    offset_column = int(round(FRAME / 2 - column_centre))
    frame = np.zeros((FRAME, FRAME), dtype=np.float64)
    # Paste with clipping: a very lopsided digit may not fit after centring.
    row_start, column_start = max(0, offset_row), max(0, offset_column)
    row_end, column_end = min(FRAME, offset_row + new_height), min(FRAME, offset_column + new_width)
    frame[row_start:row_end, column_start:column_end] = patch[
        row_start - offset_row : row_end - offset_row, column_start - offset_column : column_end - offset_column
    ]
    info = {
        "inverted": bool(inverted),
        "bounding_box": [int(top), int(left), int(bottom), int(right)],
        "source_shape": list(gray.shape),
    }
    return frame.astype(np.float32), info


MEDIAN_ROWS = 32  # rows filtered at a time: each block's dozen temporaries stay in the cache


def median3x3(image):
    """scipy.ndimage.median_filter(image, size=3) to the bit (edges mirrored, its mode "reflect"), 10 times faster.

    The median of a 3x3 window is the median of three numbers: the largest of
    its three columns' minima, the median of their medians and the smallest of
    their maxima; each column of three is sorted once for the three windows that
    share it. Only minima and maxima, in NumPy, a block of rows at a time.
    """
    padded = np.pad(image, 1, mode="symmetric")
    filtered = np.empty_like(image)
    for top in range(0, image.shape[0], MEDIAN_ROWS):
        block = padded[top : top + MEDIAN_ROWS + 2]
        above, centre, below = block[:-2], block[1:-1], block[2:]
        smaller, larger = np.minimum(above, centre), np.maximum(above, centre)
        low, high = np.minimum(smaller, below), np.maximum(larger, below)
        middle = np.maximum(
            smaller, np.minimum(larger, below, out=larger), out=smaller
        )  # each column sorted: low, middle, high
        lows = np.maximum(np.maximum(low[:, :-2], low[:, 1:-1]), low[:, 2:])
        highs = np.minimum(np.minimum(high[:, :-2], high[:, 1:-1]), high[:, 2:])
        middles = _median_of_three(middle[:, :-2], middle[:, 1:-1], middle[:, 2:])
        filtered[top : top + MEDIAN_ROWS] = _median_of_three(lows, middles, highs)
    return filtered


def _median_of_three(first, second, third):
    return np.maximum(np.minimum(first, second), np.minimum(np.maximum(first, second), third))


def _border(image):
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def prepare_file(source, name=None, limits=COMMAND_LINE):
    """load_image + to_mnist in one step."""
    name = name or (str(source) if not isinstance(source, (bytes, bytearray)) else "image")
    return to_mnist(load_image(source, name=name, limits=limits), name=name)


def save_input_png(image28, path):
    """Write the 28x28 input as the model sees it (white ink on black)."""
    with fileio.atomic_path(path) as temp_path:
        Image.fromarray((np.clip(image28, 0, 1) * 255).round().astype(np.uint8)).save(temp_path, format="PNG")
    return path

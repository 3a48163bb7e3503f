"""What PNG and JPEG headers say before any pixel is decoded (size, colour type, scans, metadata), the
libspng path for PNGs, and every mode's conversion to grayscale: the parts of `images.load_image` that know a
format's bytes."""

import collections
import re

import numpy as np
from PIL import Image

from mnistlab.core.errors import CorruptImage, ImageTooComplex, ImageTooLarge
from mnistlab.ml import image_limits

# The most EXIF read for a photo's orientation: JPEG's own bound on it (one segment). Pillow parses
# it entry by entry in Python (a 350 KB one in a PNG: 40 ms); a larger one is not read.
MAX_EXIF_BYTES = 65_535


OPAQUE = 250  # an alpha of at least this (0.98 of 255) everywhere: the image is read by its colours


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
        limits = limits or image_limits.SERVER
        if image_limits.oversized(width, height, limits):
            raise image_limits.too_large(name, width, height, limits, "PNG")


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
    if image_limits.oversized(header.width, header.height, limits):
        raise image_limits.too_large(name, header.width, header.height, limits, "PNG")
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
    _refuse_beyond_bounds(name, limits, width, height, scans, end, progressive=marker == 0xC2 or scans > 1)
    return b"".join([*kept, payload[copied:]]) if kept else payload


# A JPEG's bounds (fields of image_limits.Limits) in the order they are checked: what of the JPEG each bounds,
# whether it bounds a progressive (multi-scan) JPEG only, its refusal and its words (`limit`: the bound).
JpegBound = collections.namedtuple("JpegBound", "measure progressive_only refusal words")
JPEG_BOUNDS = {
    "jpeg_pixels": JpegBound(
        "pixels",
        False,
        ImageTooLarge,
        "a JPEG of {width} x {height} pixels is too large: {reader} reads JPEG of at most {limit:,} pixels (decoded at 1/8 scale); scale it down or crop it to the digit",
    ),
    "jpeg_scans": JpegBound(
        "scans",
        False,
        ImageTooComplex,
        "a JPEG of {scans:,} scans; {reader} reads at most {limit} (save it again as baseline JPEG)",
    ),
    "multi_scan_jpeg_pixels": JpegBound(
        "pixels",
        True,
        ImageTooLarge,
        "a progressive JPEG of {width} x {height} pixels is too large: {reader} reads progressive JPEG of at most {limit:,} pixels; save it as baseline JPEG or scale it down",
    ),
    "multi_scan_jpeg_bytes": JpegBound(
        "size",
        True,
        ImageTooLarge,
        "a progressive JPEG of {size:,} bytes is too large: {reader} reads progressive JPEG of at most {kib:,} KiB; save it as baseline JPEG or scale it down",
    ),
}


def _refuse_beyond_bounds(name, limits, width, height, scans, size, progressive):
    """Raise the refusal of the first of LIMITS' JPEG bounds that the JPEG's markers (its WIDTH, HEIGHT, SCANS, SIZE in bytes) pass."""
    said = {"width": width, "height": height, "pixels": width * height, "scans": scans, "size": size}
    for field, bound in JPEG_BOUNDS.items():
        limit = getattr(limits, field)
        if limit is None or (bound.progressive_only and not progressive) or said[bound.measure] <= limit:
            continue
        words = bound.words.format(**said, reader=limits.reader, limit=limit, kib=limit // 1024)
        raise bound.refusal(f"{name}: {words}")


def _jpeg_scale(width, height):
    """1, 2, 4 or 8: the least DCT scaling that brings a JPEG to image_limits.PHOTO_PIXELS, else 8, the most there is."""
    for scale in (1, 2, 4, 8):
        if -(-width // scale) * -(-height // scale) <= image_limits.PHOTO_PIXELS:
            return scale
    return 8


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

"""How much of an image file is decoded at most: the command line's bounds and the server's (`Limits`).

Each is checked from a file's header before any pixel is decoded (`images.load_image`).
"""

import dataclasses

from mnistlab.core.errors import ImageTooLarge

MAX_PIXELS = 25_000_000  # the command line's bound on the pixels decoded (5000 x 5000): far above any digit photo, far below a bomb


# A larger JPEG is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling: a fraction of
# the work, not a resampling after it), to at most this where 1/8 is enough: a 12 or 16 megapixel
# photo at 1/8 (500 x 375, 576 x 432) still draws its digit with a hundred pixels or more.
PHOTO_PIXELS = 250_000


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


MAX_ASPECT = (
    16  # a digit or a photo of one is at most this much longer than wide; a 1,000,000 x 1 "image" is a resize bomb
)


def oversized(width, height, limits):
    return width * height > limits.pixels or max(width, height) > MAX_ASPECT * max(min(width, height), 1)


def too_large(name, width, height, limits, what):
    if width * height <= limits.pixels:
        return ImageTooLarge(
            f"{name}: {width} x {height} pixels is too long and thin: {limits.reader} reads images at most {MAX_ASPECT} times longer than wide; crop it to the digit"
        )
    return ImageTooLarge(
        f"{name}: {width} x {height} pixels is too large: {limits.reader} reads at most {limits.pixels:,} pixels of {what}; scale it down or crop it to the digit"
    )

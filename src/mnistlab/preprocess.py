"""Turn people's digit images into MNIST-style 28x28 inputs.

One function, `to_mnist`, used by `mnistlab predict` and the web page alike,
following how MNIST itself was made: grayscale; white ink on black (a light
background is detected and inverted); cropped to the ink's bounding box;
scaled so the longer side is 20 px, keeping the aspect ratio; placed in a
28x28 frame so that the centre of mass sits at the centre; values in [0, 1].

`load_image` reads PNG, JPEG, BMP, GIF, TIFF, WebP (anything Pillow reads)
and `.npy`, in any size, mode and bit depth, refusing decompression bombs.
"""

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from mnistlab import fileio
from mnistlab.errors import CorruptImage, ImageError, ImageTooLarge, NoDigit, NotAnImage

__all__ = ["ImageError", "load_image", "prepare_file", "save_input_png", "to_mnist"]

FRAME = 28
BOX = 20
MAX_PIXELS = 25_000_000  # 5000 x 5000: far above any digit photo, far below a bomb
INK_THRESHOLD = 0.1  # of the contrast range: what counts as ink for the bounding box
MIN_CONTRAST = 0.1  # below this the image is taken as blank
DENOISE_MIN_SIDE = 56  # images at least this large are median-filtered before analysis
OPAQUE = 250  # an alpha of at least this (0.98 of 255) everywhere: the image is read by its colours


def load_image(source, name=None):
    """A 2-D float64 array in [0, 1] (0 = black) from a path or bytes.

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
        return _from_npy(payload, name)
    fast = _plain_png(payload)
    if fast is not None:
        return fast
    return _from_image_bytes(payload, name)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _plain_png(payload):
    """A plain 8-bit PNG (what a canvas's toBlob gives) decoded by libspng, about twice as fast as Pillow; else None.

    Used only where the result is the one Pillow's path gives, to the bit: 8-bit gray, RGB
    or opaque RGBA, no palette, no transparency chunk, no EXIF orientation. Everything
    else (and every machine without pyspng, an optional part of the 'serve' extra) takes
    Pillow's path. The gray is Pillow's own "L" conversion, in the same fixed point.
    """
    if payload[:8] != PNG_SIGNATURE or payload[12:16] != b"IHDR" or len(payload) < 33:
        return None
    width, height = int.from_bytes(payload[16:20], "big"), int.from_bytes(payload[20:24], "big")
    bit_depth, colour_type, interlace = payload[24], payload[25], payload[28]
    if bit_depth != 8 or colour_type not in (0, 2, 6) or interlace or width * height > MAX_PIXELS or b"tRNS" in payload or b"eXIf" in payload:
        return None
    try:
        import pyspng
    except ImportError:
        return None
    try:
        pixels = pyspng.load(payload)
    except Exception:  # noqa: BLE001 - truncated or corrupt: Pillow's path says what is wrong
        return None
    if pixels.dtype != np.uint8 or pixels.shape[:2] != (height, width):
        return None
    if pixels.ndim == 2 or pixels.shape[2] == 1:
        return pixels.reshape(height, width) / 255.0
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    image = Image.frombuffer(mode, (width, height), np.ascontiguousarray(pixels), "raw", mode, 0, 1)
    if mode == "RGBA" and image.getchannel("A").getextrema()[0] < OPAQUE:
        return None  # drawn on transparency: read by its alpha, Pillow's path
    return _rgb_gray(image)  # Pillow's own "L" (in C, no full-size temporaries)


def _from_npy(payload, name):
    try:
        array = np.load(io.BytesIO(payload), allow_pickle=False)
    except Exception as error:  # truncated or malformed .npy
        raise CorruptImage(f"{name}: not a readable .npy array ({error})") from None
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., :3].mean(axis=-1) if array.shape[-1] != 1 else array[..., 0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageError(f"{name}: a .npy image must be 2-D (H, W) or (H, W, channels), got shape {array.shape}")
    if array.size > MAX_PIXELS:
        raise ImageTooLarge(f"{name}: {array.shape[0]}x{array.shape[1]} is too large (more than {MAX_PIXELS:,} pixels)")
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


def _from_image_bytes(payload, name):
    # The size guard reads the header's size before any pixel is decoded, per
    # call: no Pillow global is changed, so concurrent requests cannot undo
    # each other's limit. (Pillow's own, larger bomb check still applies.)
    try:
        with Image.open(io.BytesIO(payload)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageTooLarge(f"{name}: {width}x{height} is too large (more than {MAX_PIXELS:,} pixels); is it a decompression bomb?")
            image.seek(0)  # first frame of a GIF or multi-page TIFF
            image = ImageOps.exif_transpose(image)  # photos taken sideways
            image.load()
            return _to_gray(image)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: image is too large (more than {MAX_PIXELS:,} pixels); is it a decompression bomb?") from None
    except UnidentifiedImageError:
        raise NotAnImage(f"{name}: not an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP) nor a .npy array") from None
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
        ink = ndimage.median_filter(ink, size=3)
    # Stretch the contrast between the paper (its median, plus 3 robust
    # standard deviations of its noise) and the darkest ink, so that a photo of
    # grey, noisy paper gives the clean black background of MNIST.
    border = _border(ink)
    background = float(np.median(border))
    noise = 1.4826 * float(np.median(np.abs(border - background)))
    floor = min(background + 3 * noise, 0.95)
    peak = float(ink.max())
    if peak - floor < MIN_CONTRAST:
        raise NoDigit(f"{name}: no digit found (the image is blank or has almost no contrast); draw or photograph a digit")
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
        resized = Image.fromarray(cropped.astype(np.float32)).resize((new_width, new_height), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR)
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
    frame[row_start:row_end, column_start:column_end] = patch[row_start - offset_row : row_end - offset_row, column_start - offset_column : column_end - offset_column]
    info = {"inverted": bool(inverted), "bounding_box": [int(top), int(left), int(bottom), int(right)], "source_shape": list(gray.shape)}
    return frame.astype(np.float32), info


def _border(image):
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def prepare_file(source, name=None):
    """load_image + to_mnist in one step."""
    name = name or str(source)
    return to_mnist(load_image(source, name=name), name=name)


def save_input_png(image28, path):
    """Write the 28x28 input as the model sees it (white ink on black)."""
    with fileio.atomic_path(path) as temp_path:
        Image.fromarray((np.clip(image28, 0, 1) * 255).round().astype(np.uint8)).save(temp_path, format="PNG")
    return path


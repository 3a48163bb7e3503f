"""Read people's image files, each decoded once and within bounds (`Limits`).

`load_image` reads PNG, JPEG, BMP, GIF, TIFF, WebP (anything Pillow reads)
and `.npy`, in any mode and bit depth, each decoded once, and only after its
header has said what decoding it will cost. `Limits` bound that cost: the
command line's (`COMMAND_LINE`) take any format up to 25 megapixels; the
server's (`SERVER`) hold every request, whatever its upload, to tens of
milliseconds of CPU and a few MiB (benchmarks/hostile_uploads.py measures
them). A JPEG larger than image_limits.PHOTO_PIXELS is decoded at 1/2, 1/4 or 1/8 of its
size by libjpeg's DCT scaling, on both: a 12-megapixel photo at 500 x 375.
"""

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnistlab.core import fileio
from mnistlab.core.errors import CorruptImage, ImageError, ImageTooLarge, NotAnImage
from mnistlab.ml import image_formats, image_limits


def load_image(source, name=None, limits=image_limits.COMMAND_LINE):
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
    if payload[:8] == image_formats.PNG_SIGNATURE:
        payload, header = image_formats._png_essentials(payload, name, limits)
        if header.plain:
            decoded = image_formats._from_libspng(payload, header, name)
            if decoded is not None:
                return decoded
    elif payload[:3] == image_formats.JPEG_START and image_formats._walks_jpeg(limits):
        payload = image_formats._jpeg_within(payload, name, limits)
    return _from_image_bytes(payload, name, limits)


def _from_npy(payload, name, limits):
    stream = io.BytesIO(payload)
    try:
        # The shape from the header first: an array too large is refused before it is read.
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(
            np.lib.format.read_magic(stream)
        )
        shape = read_header(stream)[0] if read_header is not None else ()
        if len(shape) >= 2 and image_limits.oversized(shape[1], shape[0], limits):
            raise image_limits.too_large(name, shape[1], shape[0], limits, ".npy array")
        array = np.load(io.BytesIO(payload), allow_pickle=False)
    except ImageError:
        raise
    except Exception as error:  # truncated or malformed .npy
        raise CorruptImage(f"{name}: not a readable .npy array ({error})") from None
    if array.ndim >= 2 and image_limits.oversized(array.shape[1], array.shape[0], limits):
        raise image_limits.too_large(name, array.shape[1], array.shape[0], limits, ".npy array")
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., :3].mean(axis=-1) if array.shape[-1] != 1 else array[..., 0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageError(
            f"{name}: a .npy image must be 2-D (H, W) or (H, W, channels), got shape {'x'.join(map(str, array.shape)) or 'a scalar'}"
        )
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
                scale = image_formats._jpeg_scale(width, height)
                if scale > 1:  # decoded at 1/SCALE by libjpeg, in gray: a fraction of the work
                    image.draft("L", (max(1, width // scale), max(1, height // scale)))
                    what = f"JPEG once decoded at 1/{scale} scale"
            if image_limits.oversized(image.width, image.height, limits):
                raise image_limits.too_large(name, width, height, limits, what)
            if len(image.info.get("exif") or b"") <= image_formats.MAX_EXIF_BYTES:
                image = ImageOps.exif_transpose(image)  # photos taken sideways
            image.load()
            return image_formats._to_gray(image)
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

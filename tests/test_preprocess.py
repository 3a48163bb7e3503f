"""People's images to MNIST-style inputs: centring, scaling, inversion, formats, bad files."""

import io

import numpy as np
import pytest
from PIL import Image

from conftest import bomb_png, load_script, png_bytes
from mnistlab.core.errors import ImageError
from mnistlab.ml import image_formats, image_limits, images, preprocess

render_photo_like = load_script("scripts/measure_photo_agreement.py").render_photo_like


# --------------------------------------------------------------------------
# Preprocessing on synthetic images


def digit_like(height=28, width=28, box=(6, 8, 22, 18)):
    """A white bar-shaped 'digit' on black."""
    image = np.zeros((height, width))
    top, left, bottom, right = box
    image[top:bottom, left:right] = 1.0
    return image


def centre_of_mass(image):
    total = image.sum()
    return (image.sum(axis=1) * np.arange(image.shape[0])).sum() / total, (
        image.sum(axis=0) * np.arange(image.shape[1])
    ).sum() / total


def test_off_centre_digit_is_centred_and_scaled():
    image = np.zeros((100, 60))
    image[5:45, 35:50] = 1.0  # tall bar in the top right
    out, info = preprocess.to_mnist(image)
    assert out.shape == (28, 28) and out.dtype == np.float32
    rows, columns = np.nonzero(out > 0.5)
    assert rows.max() - rows.min() + 1 == pytest.approx(20, abs=1)  # longer side 20 px
    assert columns.max() - columns.min() + 1 == pytest.approx(20 * 15 / 40, abs=1)  # aspect kept
    assert np.allclose(centre_of_mass(out), (14, 14), atol=0.6)
    assert info["bounding_box"] == [5, 35, 45, 50] and not info["inverted"]


def test_light_background_is_inverted():
    dark_on_light = 1.0 - digit_like()
    out, info = preprocess.to_mnist(dark_on_light)
    assert info["inverted"]
    np.testing.assert_allclose(out, preprocess.to_mnist(digit_like())[0], atol=1e-6)


def test_tiny_and_huge_images():
    tiny = np.zeros((5, 5))
    tiny[1:4, 2] = 1
    out, _ = preprocess.to_mnist(tiny)
    assert (out > 0.3).sum() >= 10  # scaled up to 20 px tall
    huge = np.zeros((3000, 2000), dtype=np.uint8)
    huge[500:2500, 900:1200] = 255
    out, info = preprocess.prepare_file(png_bytes(huge), name="huge")
    assert out.shape == (28, 28) and info["source_shape"] == [3000, 2000]


def test_rgba_transparent_canvas_and_16_bit():
    rgba = np.zeros((80, 80, 4), dtype=np.uint8)
    rgba[10:70, 30:45] = [0, 0, 0, 255]  # black ink on a transparent canvas
    from_rgba, _ = preprocess.prepare_file(png_bytes(rgba, "RGBA"))
    gray16 = (digit_like(80, 80, (10, 30, 70, 45)) * 65535).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(gray16).save(buffer, format="PNG")
    from_16, _ = preprocess.prepare_file(buffer.getvalue())
    from_float, _ = preprocess.to_mnist(digit_like(80, 80, (10, 30, 70, 45)))
    np.testing.assert_allclose(from_rgba, from_float, atol=1e-6)
    np.testing.assert_allclose(from_16, from_float, atol=1e-4)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"])
def test_every_format_reads(fmt):
    image = (digit_like(56, 56, (8, 20, 48, 34)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).convert("RGB").save(buffer, format=fmt)
    out, _ = preprocess.prepare_file(buffer.getvalue(), name=fmt)
    assert out.max() == pytest.approx(1.0, abs=0.05) and out.sum() > 20


def test_npy_inputs(tmp_path):
    for array in (digit_like(), (digit_like() * 255).astype(np.uint8), (digit_like() * 65535).astype(np.uint16)):
        path = tmp_path / "digit.npy"
        np.save(path, array)
        out, _ = preprocess.prepare_file(path)
        np.testing.assert_allclose(out, preprocess.to_mnist(digit_like())[0], atol=1e-4)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"hello, not an image", "not an image"),
        (png_bytes(np.zeros((50, 50), np.uint8))[:60], "truncated or corrupt"),
        (png_bytes(np.zeros((50, 50), np.uint8)), "no digit found"),
        (b"", "empty file"),
    ],
)
def test_bad_images(payload, message):
    with pytest.raises(ImageError, match=message):
        preprocess.prepare_file(payload, name="x")


def test_decompression_bomb_is_refused():
    with pytest.raises(ImageError, match="too large"):
        preprocess.prepare_file(bomb_png(), name="bomb.png")


def test_photo_like_digits_agree_with_clean(mini, trained_runs):
    """The measurement of the issue, on 200 mnist-mini digits: photo-like vs clean predictions."""
    from mnistlab.ml.predict import Predictor

    predictor = Predictor(trained_runs["mlp"])
    rng = np.random.default_rng(0)
    digits = mini.x_test[:200]
    photos = np.stack([preprocess.prepare_file(render_photo_like(d, rng))[0] for d in digits])
    clean = predictor.predict(digits / 255.0).argmax(axis=1)
    assert (predictor.predict(photos).argmax(axis=1) == clean).mean() >= 0.9


def test_libspng_reads_plain_pngs_exactly_as_pillow_does_and_leaves_the_rest_to_it(mini, monkeypatch):
    """The fast PNG path (pyspng) gives Pillow's pixels to the bit, transparent or not; the rest is Pillow's, decoded by it alone."""
    pytest.importorskip("pyspng")

    digit = np.asarray(Image.fromarray(mini.x_test[3]).resize((200, 200)))
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., :3] = np.stack([digit, 255 - digit, digit // 3], -1)
    rgba[..., 3] = 255
    transparent = rgba.copy()
    transparent[..., 3] = digit  # ink by its alpha

    def png(array, mode, **options):
        buffer = io.BytesIO()
        (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(buffer, format="PNG", **options)
        return buffer.getvalue()

    def pillow(payload):  # Pillow's own path, as before the fast one
        monkeypatch.setattr(image_formats, "_from_libspng", lambda *args: None)
        try:
            return images.load_image(payload, "x")
        finally:
            monkeypatch.undo()

    plain = (png(rgba, "RGBA"), png(transparent, "RGBA"), png(rgba[..., :3].copy(), "RGB"), png(digit, "L"))
    for payload in plain:
        payload, header = image_formats._png_essentials(payload, "x", image_limits.COMMAND_LINE)
        assert header.plain
        fast = image_formats._from_libspng(payload, header, "x")
        assert fast is not None and np.array_equal(fast, pillow(payload))
    sixteen_bit = png(digit.astype(np.uint16) * 257, None)
    palette = io.BytesIO()
    Image.fromarray(digit, "L").convert("P").save(palette, format="PNG")
    for payload in (
        sixteen_bit,
        palette.getvalue(),
        png(digit, "L", transparency=0),
        png(np.stack([digit, 255 - digit], -1), "LA"),
    ):
        assert not image_formats._png_essentials(payload, "x", image_limits.COMMAND_LINE)[1].plain
    # A truncated one is refused as it is, not decoded again by Pillow.
    with pytest.raises(ImageError, match="truncated or corrupt"):
        images.load_image(png(rgba, "RGBA")[:200], "x")


def test_median_filter_is_scipys_to_the_bit():
    """to_mnist's own 3x3 median (ten times faster) against scipy's, edges included, on every shape up to 70 x 70."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    for trial in range(300):
        height, width = rng.integers(1, 70, 2)
        image = rng.integers(0, 4 if trial % 2 else 256, (height, width)) / 255.0  # few values (many ties) and many
        assert np.array_equal(preprocess.median3x3(image), ndimage.median_filter(image, size=3)), (height, width)
    photo = rng.normal(0.5, 0.2, (300, 200))
    assert np.array_equal(preprocess.median3x3(photo), ndimage.median_filter(photo, size=3))

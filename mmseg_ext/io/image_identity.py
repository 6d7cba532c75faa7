"""Which images are one image: the same file, a byte copy, or the same pixels re-encoded.

A user who re-saves the training X-rays (another PNG compressor, TIFF, BMP, a 16-bit PNG
as 8-bit) and gives them as "unlabelled" or "held-back" images gets files whose bytes
differ from the originals although every tool reads the same picture from them.
:func:`same_images` finds such pairs: byte-identical files first
(:func:`~mmseg_ext.io.paths.same_content`), then, among the rest, images whose decoded
pixels (as every tool reads them: :func:`~mmseg_ext.io.images.read_image`, ``(H, W, 3)``
``uint8``) are equal. Only images whose header size some image of the other side shares
are decoded, each once.

A lossy re-encoding (JPEG) changes the pixels and is not recognised: nothing tells it
apart from a similar image of another patient without a threshold that would refuse
legitimate data.
"""
from __future__ import annotations

import hashlib
from typing import Dict, List, Optional, Sequence, Tuple

from .images import header_size, read_image
from .paths import same_content

PixelKey = Tuple[Tuple[int, ...], str]


def pixel_digest(path: str) -> PixelKey:
    """``(shape, SHA-256)`` of the pixels the tools read from ``path``.

    Raises:
        DataError: the file cannot be read or decoded.
    """
    image = read_image(path)
    return tuple(image.shape), hashlib.sha256(image.tobytes()).hexdigest()


def _decoded_side(sizes: Dict[str, Optional[Tuple[int, int]]],
                  against: set) -> List[str]:
    """The images of ``sizes`` that may equal one of ``against``'s sizes: the same size,
    or a size Pillow cannot read from a header on either side (decoded whatever it is)."""
    return [path for path, size in sizes.items()
            if size is None or None in against or size in against]


def same_images(paths: Sequence[str], others: Sequence[str]) -> List[Tuple[str, str]]:
    """``(path, other)`` for each image of ``paths`` that is an image of ``others``: the
    same file by any path or link, a byte-identical copy, or the same decoded pixels
    (the first such other, in the order of ``paths``).

    Raises:
        DataError: an image that must be decoded and cannot be.
    """
    found = dict(same_content(paths, others))
    rest_sizes = {p: header_size(p) for p in paths if p not in found}
    other_sizes = {o: header_size(o) for o in others}
    candidates = _decoded_side(rest_sizes, set(other_sizes.values()))
    if candidates:
        wanted = set(rest_sizes[p] for p in candidates)
        by_pixels: Dict[PixelKey, str] = {}
        for other in _decoded_side(other_sizes, wanted):
            by_pixels.setdefault(pixel_digest(other), other)
        for path in candidates:
            match = by_pixels.get(pixel_digest(path))
            if match is not None:
                found[path] = match
    return [(p, found[p]) for p in paths if p in found]

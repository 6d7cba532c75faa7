"""Writing image files of an output, with every failure reported.

``cv2.imwrite`` answers a full disk, a file size limit (``ulimit -f``) or an unwritable
folder with ``False`` and nothing else (and libpng prints ``Write Error`` on stderr);
a caller that does not look at the return value publishes an empty or partial folder.
:func:`write_image` is the one image writer of the tools: it encodes in memory
(``cv2.imencode``, whose status is checked) and writes the bytes with Python's own
``open``, so a write error is the real ``OSError`` (``ENOSPC``, ``EFBIG``, ``EIO``...),
raised as an :class:`~mmseg_ext.utils.errors.OutputError` that names the user's output
(a file in a hidden staging folder is named as the output it becomes,
:func:`mmseg_ext.io.staging.user_path`).
"""
from __future__ import annotations

import os.path as osp
from typing import Sequence

import numpy as np

from ..utils.errors import OutputError
from .output_errors import output_error
from .staging import user_path


def encode_image(path: str, image: np.ndarray, params: Sequence[int] = ()) -> bytes:
    """The bytes of ``image`` in the format of ``path``'s extension (``.png``,
    ``.jpg``...), as ``cv2.imwrite`` would write them.

    Args:
        path: the file the bytes are for (its extension picks the format; named in
            errors).
        image: ``(H, W)`` or ``(H, W, 3)`` BGR array (``uint8``, or ``uint16`` for PNG).
        params: ``cv2.imwrite`` parameters (``[cv2.IMWRITE_JPEG_QUALITY, 95]``).

    Raises:
        OutputError: the encoder refuses the image or the extension.
    """
    import cv2
    ext = osp.splitext(path)[1] or '.png'
    try:
        ok, buf = cv2.imencode(ext, image, list(params))
    except cv2.error as exc:
        first = (str(exc).strip().splitlines() or ['encoder error'])[-1]
        raise OutputError(f'{user_path(path)}: cannot encode the image as {ext} '
                          f'({first})') from None
    if not ok or buf is None:
        raise OutputError(f'{user_path(path)}: cannot encode the image as {ext}')
    return buf.tobytes()


def write_image(path: str, image: np.ndarray, params: Sequence[int] = ()) -> None:
    """Write ``image`` to ``path`` (format from the extension), checking every step.

    The caller stages the file (it is inside a :class:`~mmseg_ext.io.staged_dir.StagedDir`
    or a folder published whole); this function only makes sure a failure is never
    silent.

    Raises:
        OutputError: encoding or writing failed (disk full, ``EFBIG``, permissions);
            the message names the output path as the user gave it.
    """
    data = encode_image(path, image, params)
    try:
        with open(path, 'wb') as f:
            f.write(data)
    except OSError as exc:
        raise output_error(path, exc) from None

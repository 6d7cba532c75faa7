"""Finding images in a folder tree and reading their sizes without decoding them."""
from __future__ import annotations

import io
import os
import os.path as osp
import stat
import threading
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..utils.errors import DataError

IMG_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def list_images(img_dir: str, suffixes: Sequence[str] = IMG_SUFFIXES,
                skipped: Optional[List[str]] = None) -> List[str]:
    """Relative paths (``/``-separated, sorted) of the images under ``img_dir``, recursively.

    Hidden files and folders (name starting with ``.``) are skipped silently; other
    files without one of ``suffixes`` are appended to ``skipped`` when it is given, so
    the caller can say what it left out (:func:`skipped_note`). Symbolic links to files
    and folders are followed.

    Raises:
        DataError: ``img_dir`` is not a folder; an entry with an image suffix is not a
            regular file (a FIFO, socket or device: never opened, so nothing blocks) or
            a link that loops or points nowhere; a folder link leads back to a folder
            it is inside (a loop); two paths lead to one file (a linked folder beside
            its target, a hard link). The message names the entry.
    """
    from ..utils.readers import check_folder
    check_folder(img_dir, 'image folder', DataError)
    suffixes = tuple(s.lower() for s in suffixes)
    found: List[str] = []
    _walk_images(img_dir, '', suffixes, found, skipped, [_dir_id(img_dir)])
    found.sort()
    seen: Dict[Tuple[int, int], str] = {}
    for rel in found:  # one file reached by two paths would count (and split) twice
        ident = _dir_id(osp.join(img_dir, rel))
        if ident in seen:
            raise DataError(f'{img_dir}: {seen[ident]} and {rel} are one file (through a '
                            'symbolic or hard link): each image must be listed once; '
                            'remove one of the paths')
        seen[ident] = rel
    return found


def _dir_id(path: str) -> Tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _walk_images(root: str, rel_dir: str, suffixes: Tuple[str, ...], found: List[str],
                 skipped: Optional[List[str]], ancestors: List[Tuple[int, int]]) -> None:
    """Append the images of ``root/rel_dir`` and its subfolders (depth first);
    ``ancestors`` are the ``(st_dev, st_ino)`` of the folders on the way down."""
    from ..utils.readers import file_kind, stat_problem
    folder = osp.join(root, rel_dir) if rel_dir else root
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f'{folder}: cannot list the image folder ({exc.strerror})') from None
    for entry in entries:
        if entry.name.startswith('.'):
            continue
        rel = f'{rel_dir}/{entry.name}' if rel_dir else entry.name
        path = osp.join(root, rel)
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            if entry.name.lower().endswith(suffixes):
                raise DataError(f'{path}: {stat_problem(path)}') from None
            if skipped is not None:
                skipped.append(rel)
            continue
        if stat.S_ISDIR(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident in ancestors:
                raise DataError(f'{path}: a symbolic link that loops (it leads back to '
                                f'{osp.realpath(path)}, a folder it is inside)')
            _walk_images(root, rel, suffixes, found, skipped, ancestors + [ident])
        elif entry.name.lower().endswith(suffixes):
            if not stat.S_ISREG(st.st_mode):
                raise DataError(f'{path}: not a regular file ({file_kind(st.st_mode)})')
            found.append(rel)
        elif skipped is not None:
            skipped.append(rel)


def skipped_note(img_dir: str, skipped: Sequence[str], suffixes: Sequence[str]) -> str:
    """``''``, or one line saying which files under ``img_dir`` were left out."""
    if not skipped:
        return ''
    shown = ', '.join(sorted(skipped)[:3]) + (', ...' if len(skipped) > 3 else '')
    return (f'{img_dir}: skipped {len(skipped)} file(s) that are not '
            f'{"/".join(suffixes)} images ({shown})')


def read_image_list(path: str, suffixes: Union[str, Sequence[str]],
                    root: Optional[str] = None) -> List[str]:
    """Image paths named by a list file: one per line, relative to the image folder
    ``root``, each a full file name or a stem (the stems ``tools/kfold.py`` and mmseg's
    split files hold, to which an image suffix is added); blank lines and ``#``
    comments are skipped.

    With ``root``, each entry is resolved against the files there: the candidates are
    the entry itself when it is a file with one of ``suffixes``, and the entry plus each
    of ``suffixes`` (the suffix's case as the file has it: ``a`` finds ``a.PNG``).
    Exactly one candidate must exist. Without ``root``, an entry ending with one of
    ``suffixes`` is kept and a stem gets the first.

    Entries are normalised and checked (:func:`~mmseg_ext.io.paths.data_relpath`; with
    ``root``, also :func:`~mmseg_ext.io.paths.resolve_under`).

    Raises:
        DataError: naming the file and line: an absolute or escaping entry; with
            ``root``, an entry that names no image or two (``x.png`` when both
            ``x.png`` and ``x.png.png`` exist), or the image of an earlier line again.
    """
    from ..utils.readers import read_lines
    from .paths import data_relpath, file_identity, resolve_under
    suffixes = (suffixes,) if isinstance(suffixes, str) else tuple(suffixes)
    lines = read_lines(path, 'image list', comments=True)
    listings: Dict[str, set] = {}
    images: List[str] = []
    first_line: Dict[object, Tuple[int, str]] = {}
    for lineno, line in lines:
        where = f'{path}:{lineno}'
        rel = data_relpath(line, where, root)
        if root is None:
            has_suffix = rel.lower().endswith(tuple(x.lower() for x in suffixes))
            images.append(rel if has_suffix else rel + suffixes[0])
            continue
        rel = _listed_image(root, rel, suffixes, listings, where)
        resolve_under(root, rel, where)
        ident = file_identity(osp.join(root, rel))  # spellings or links of one file
        if ident in first_line:
            first, earlier = first_line[ident]
            raise DataError(f'{where}: {line} is the image of line {first} ({earlier}) '
                            'again')
        first_line[ident] = (lineno, rel)
        images.append(rel)
    if not images:
        raise DataError(f'{path}: the image list is empty')
    return images


def _listed_image(root: str, rel: str, suffixes: Tuple[str, ...],
                  listings: Dict[str, set], where: str) -> str:
    """The one image under ``root`` that the list entry ``rel`` names (see
    :func:`read_image_list`); ``listings`` caches each folder's names."""
    folder, base = osp.split(rel)
    if folder not in listings:
        try:
            listings[folder] = set(os.listdir(osp.join(root, folder)))
        except OSError:
            listings[folder] = set()
    names = listings[folder]
    lowered = tuple(x.lower() for x in suffixes)
    found = [base] if base in names and base.lower().endswith(lowered) else []
    found += [n for n in sorted(names) if n.startswith(base) and n != base
              and n[len(base):].lower() in lowered]
    found = [osp.join(folder, n).replace(os.sep, '/') for n in found]
    if not found:
        raise DataError(f'{where}: {rel}: no such image under {root} (looked for '
                        f'{rel} and {rel}{{{",".join(suffixes)}}})')
    if len(found) > 1:
        raise DataError(f'{where}: {rel} names {len(found)} images under {root} '
                        f'({", ".join(found)}): spell it so that it fits one image only '
                        '(a stem for the shorter name, the full file name for the longer)')
    return found[0]


_PIL_LOCK = threading.Lock()


def header_size(source: Union[str, bytes]) -> Optional[Tuple[int, int]]:
    """``(H, W)`` from an image's header (a path or the encoded bytes), without decoding
    the pixels; None when Pillow does not know the format. Pillow's own decompression
    bomb limit is lifted while the header is read: :func:`check_pixels` is the cap."""
    from PIL import Image
    with _PIL_LOCK:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) \
                    as img:
                w, h = img.size
                if _exif_orientation(img) in TRANSPOSING_ORIENTATIONS:
                    w, h = h, w  # the decoders turn it upright (see decode_image)
            return int(h), int(w)
        except Exception:  # noqa: BLE001  (not an image Pillow knows: let cv2 try)
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = limit


#: EXIF orientations (tag 0x0112) that turn the image by 90 degrees: height and width
#: swap when the image is turned upright
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


def _exif_orientation(img) -> int:
    """The EXIF orientation (1-8) of an open Pillow image; 1 when it has none."""
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001  (a broken EXIF block: as stored)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of encoded image bytes; 1 when none or unreadable."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _exif_orientation(img)
    except Exception:  # noqa: BLE001  (not an image Pillow knows)
        return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` (as stored, ``(H, W[, C])``) turned upright for an EXIF orientation
    1-8, as OpenCV's colour decoding does it."""
    import cv2
    turns = {2: lambda a: cv2.flip(a, 1), 3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
             4: lambda a: cv2.flip(a, 0), 5: lambda a: cv2.transpose(a),
             6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
             7: lambda a: cv2.rotate(cv2.flip(a, 1), cv2.ROTATE_90_CLOCKWISE),
             8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)}
    return turns[orientation](image) if orientation in turns else image


def _imread_unchanged(path: str) -> Optional[np.ndarray]:
    """The file decoded by OpenCV as stored (``IMREAD_UNCHANGED``: its depth and
    channels), or None when it cannot be decoded."""
    import cv2
    try:
        return cv2.imread(path, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


def image_size(path: str) -> Tuple[int, int]:
    """``(H, W)`` of an image file, read from its header (Pillow), or decoded (cv2).

    Raises:
        DataError: not a regular file, not an image, no pixels, or more pixels than the
            cap (:func:`~mmseg_ext.utils.readers.check_pixels`).
    """
    from ..utils.readers import check_pixels, check_regular_file
    check_regular_file(path, 'image file')
    size = header_size(path)
    if size is None:
        img = _imread_unchanged(path)
        if img is None:
            raise DataError(f'{path}: cannot read the image')
        size = int(img.shape[0]), int(img.shape[1])
    check_pixels(path, *size)
    return size


#: Bit depths a high-bit-depth image is assumed to use (see :func:`to_uint8`).
BIT_DEPTHS = (8, 10, 12, 14, 16)


def significant_bit_depth(image: np.ndarray) -> int:
    """The smallest of :data:`BIT_DEPTHS` whose range holds every value of ``image``."""
    top = int(image.max()) if image.size else 0
    return next(b for b in BIT_DEPTHS if top < 2 ** b) if top < 2 ** 16 else 16


def to_uint8(image: np.ndarray, bit_depth: Optional[int] = None) -> np.ndarray:
    """An image as ``uint8``, 16-bit data scaled by the bit depth it uses.

    ``uint8`` input is returned as it is. For ``uint16`` input with ``b`` significant
    bits (``bit_depth``, or :func:`significant_bit_depth`: 12-bit X-rays stored in a
    16-bit PNG give 12) the result is ``round(value * 255 / (2**b - 1))``, clipped; so a
    12-bit image uses the whole 8-bit range instead of becoming black, as OpenCV's
    plain conversion (``value >> 8``) makes it. Other dtypes are refused.
    """
    if image.dtype == np.uint8:
        return image
    if image.dtype != np.uint16:
        raise DataError(f'unsupported image dtype {image.dtype} (expected uint8 or uint16)')
    bits = bit_depth or significant_bit_depth(image)
    scaled = np.rint(image.astype(np.float32) * (255.0 / (2 ** bits - 1)))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def stores_high_bit_depth(data: bytes) -> bool:
    """Whether encoded image bytes may hold more than 8 bits a sample: a 16-bit PNG (the
    bit depth is byte 24, in the IHDR chunk) or any TIFF."""
    if data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 24:
        return data[24] == 16
    return data[:4] in (b'II*\x00', b'MM\x00*')


def decode_image(data: bytes, bit_depth: Optional[int] = None) -> Optional[np.ndarray]:
    """Encoded image bytes as ``(H, W, 3)`` ``uint8`` BGR, or None when undecodable.

    8-bit images decode as OpenCV's colour decoding gives them (EXIF orientation
    applied, grey repeated over three channels). 16-bit PNG/TIFF data is scaled to 8
    bits by :func:`to_uint8` instead of OpenCV's ``value >> 8``, and turned upright by
    its EXIF orientation too, so every image has the size :func:`header_size` reads.
    """
    import cv2
    buf = np.frombuffer(data, np.uint8)
    if not stores_high_bit_depth(data):
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        return None
    # upright, as the 8-bit colour decoding above and header_size make it
    image = apply_orientation(to_uint8(image, bit_depth), exif_orientation(data))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def read_image(path: str, bit_depth: Optional[int] = None) -> np.ndarray:
    """An image file as ``(H, W, 3)`` ``uint8`` BGR (:func:`decode_image`).

    Raises:
        DataError: the file is missing or cannot be decoded.
    """
    from ..utils.readers import check_pixels, read_bytes
    data = read_bytes(path, 'image file')
    size = header_size(data)
    if size is not None:
        check_pixels(path, *size)  # before decoding
    import cv2
    try:
        image = decode_image(data, bit_depth)
    except (ValueError, cv2.error) as exc:
        raise DataError(f'{path}: cannot decode the image ({str(exc).strip()[:200]})'
                        ) from None
    if image is None:
        raise DataError(f'{path}: cannot decode the image')
    check_pixels(path, *image.shape[:2])
    return image


def _palette_indices(path: str) -> Optional[np.ndarray]:
    """The ``(H, W)`` ``uint8`` colour indices of a palette (``P`` mode) image, which
    are its labels (VOC-style label PNGs, as mmseg reads them through Pillow); None for
    any other image (OpenCV would expand the palette to colours)."""
    from PIL import Image

    from ..utils.readers import reading
    with _PIL_LOCK:
        try:
            img = Image.open(path)
        except Exception:  # noqa: BLE001  (not an image Pillow knows: let cv2 try)
            return None
    with img:
        if img.mode != 'P':
            return None
        with reading(path, 'label file'):
            return np.array(img, dtype=np.uint8)


#: Pillow modes of several channels, in words (what a label map must not be)
_MODE_WORDS = {'LA': 'gray + alpha', 'La': 'gray + alpha', 'PA': 'palette + alpha',
               'RGB': 'colour', 'RGBA': 'colour + alpha', 'RGBa': 'colour + alpha',
               'CMYK': 'CMYK', 'YCbCr': 'YCbCr', 'LAB': 'Lab', 'HSV': 'HSV',
               'RGBX': 'colour + padding'}


def stored_channels(source, decoded_shape: Sequence[int]) -> str:
    """The channels of an image file as the file stores them, in words, for a message
    that refuses a label map of several channels: ``'mode LA: gray + alpha, 2
    channels'``. A decoder may convert before the caller sees the array (OpenCV reads
    gray + alpha as 4 channels, BGRA), so the file's own mode is read from its header
    (Pillow); ``source`` is a path or the file's bytes. Where Pillow cannot tell, the
    decoded array's shape is named as such."""
    from PIL import Image
    try:
        with _PIL_LOCK, Image.open(io.BytesIO(source) if isinstance(source, bytes)
                                   else source) as img:
            mode, bands = img.mode, len(img.getbands())
    except Exception:  # noqa: BLE001  (not an image Pillow knows)
        return f'decoded as shape {tuple(int(v) for v in decoded_shape)}'
    words = _MODE_WORDS.get(mode)
    return (f'mode {mode}: {words + ", " if words else ""}{bands} channel'
            f'{"s" if bands != 1 else ""}')


def read_label_map(path: str) -> np.ndarray:
    """A label PNG as an ``(H, W)`` integer map (its stored dtype, ``uint8`` usually).

    Raises:
        DataError: the file is missing, cannot be decoded, or has several channels.
    """
    from ..utils.readers import check_pixels, check_regular_file
    check_regular_file(path, 'label file')
    size = header_size(path)
    if size is not None:
        check_pixels(path, *size)
    label = _palette_indices(path)
    if label is None:
        label = _imread_unchanged(path)
    if label is None:
        raise DataError(f'{path}: cannot read the label file')
    if label.ndim != 2:  # named as the file stores it, not as OpenCV converted it
        raise DataError(f'{path}: not a single-channel label map '
                        f'({stored_channels(path, label.shape)})')
    return label


#: label PNGs (``mmseg``'s, COCO-made, pseudo-labels) are ``uint8``: class indices and
#: the ignore index must fit
LABEL_DTYPE_MAX = 255


def check_label_capacity(classes: Sequence[str], ignore_index: int, source: str) -> None:
    """Refuse a class list that ``uint8`` label maps cannot hold: class indices
    ``0..len(classes)-1`` must be below 256 and must not reach ``ignore_index``.

    Raises:
        DataError: naming ``source`` (the file or folder the classes come from).
    """
    if not isinstance(ignore_index, int) or isinstance(ignore_index, bool) \
            or not 0 <= ignore_index <= LABEL_DTYPE_MAX:
        raise DataError(f'{source}: ignore_index {ignore_index!r} is not a uint8 label '
                        f'value (0..{LABEL_DTYPE_MAX})')
    if len(classes) > ignore_index:
        raise DataError(f'{source}: {len(classes)} classes, but uint8 label maps hold '
                        f'at most {ignore_index} (class indices 0..{ignore_index - 1}; '
                        f'{ignore_index} marks ignored pixels)')


def check_label_map(label: np.ndarray, path: str, image_shape: Optional[Sequence[int]] = None,
                    image_path: Optional[str] = None) -> np.ndarray:
    """A label map ``(H, W)`` as ``uint8``, refused where it cannot be one: a value
    outside 0..255 (a 16-bit label of 300 would wrap into class 44) and, with
    ``image_shape``, a size other than its image's (it would be stretched). The one
    rule of the training loader and the tools that read label folders.

    Raises:
        DataError: naming ``path`` (and ``image_path``) and the problem.
    """
    if label.dtype != np.uint8:
        if label.size and (label.min() < 0 or label.max() > 255):
            bad = int(label.max()) if label.max() > 255 else int(label.min())
            raise DataError(f'{path}: holds the label value {bad}; label maps hold 0..255 '
                            '(classes and the ignore index)')
        label = label.astype(np.uint8)
    if image_shape is not None and tuple(label.shape) != tuple(image_shape[:2]):
        image = f'its image {image_path}' if image_path else 'its image'
        raise DataError(f'{path}: label map is {label.shape[0]}x{label.shape[1]} (HxW) but '
                        f'{image} is {image_shape[0]}x{image_shape[1]}')
    return label


def image_sizes_by_name(img_dir: str, key: str = 'basename'
                        ) -> Dict[str, Tuple[int, int]]:
    """Map each image under ``img_dir`` to its ``(H, W)``.

    Args:
        key: ``'basename'`` (file name only; duplicates are an error) or ``'relpath'``.
    """
    sizes: Dict[str, Tuple[int, int]] = {}
    where: Dict[str, str] = {}
    for rel in list_images(img_dir):
        name = osp.basename(rel) if key == 'basename' else rel
        if name in sizes:
            raise DataError(f'{img_dir}: two images are named {name} '
                            f'({where[name]} and {rel})')
        where[name] = rel
        sizes[name] = image_size(osp.join(img_dir, rel))
    if not sizes:
        raise DataError(f'{img_dir}: no images found')
    return sizes


def parse_size(text: str) -> Optional[Tuple[int, int]]:
    """``'HxW'``, ``'H,W'`` or ``'N'`` (square) -> ``(H, W)``; None when ``text`` is not
    one of those (the caller checks the range and words the error)."""
    if not text.isascii() or '_' in text:  # int() reads other digits ('٦٤') and 1_0
        return None
    parts = text.strip().lower().replace('x', ',').split(',')
    try:
        values = [int(p) for p in parts]
    except ValueError:
        return None
    if len(values) == 1:
        values = values * 2
    return (values[0], values[1]) if len(values) == 2 else None

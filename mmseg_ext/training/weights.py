"""Fetching pretrained backbone weights: download, checksum, conversion to mmseg's key
names, and the fit of a file to the backbone a config builds.

What ``tools/get_weights.py`` runs. The catalogue of files is
:mod:`mmseg_ext.models.weights_catalog`.
"""
from __future__ import annotations

import contextlib
import http.client
import importlib.util
import io
import os
import os.path as osp
import urllib.error
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from ..io.atomic import publish_file, temp_beside
from ..io.download import DownloadLimits, Opener, download_to
from ..io.output_errors import make_parent, output_error
from ..io.owned_file import check_replaceable_file, replace_problem
from ..io.paths import file_sha256
from ..models.weights_catalog import (
    PRETRAIN_DIR,
    WEIGHTS,
    PretrainedWeights,
    hub_urls,
    timm_weights,
)
from ..utils.errors import (
    DataError,
    DownloadError,
    InvalidArgumentError,
    OutputError,
    OutputExistsError,
)

# --------------------------------------------------------------------------------------
# fetching
# --------------------------------------------------------------------------------------

@dataclass
class FetchResult:
    name: str
    path: str
    status: str          # 'downloaded' or 'present'
    source: str = ''     # the URL it came from
    checked_against: Optional[str] = None  # the config whose backbone it fits


def resolve_names(names: Sequence[str]) -> List[PretrainedWeights]:
    """Registry entries for ``names`` (``'all'`` = every entry), in the given order.

    Raises:
        InvalidArgumentError: an unknown name (the message lists the known ones).
    """
    if not names:
        raise InvalidArgumentError('names', f'name the weights to fetch: '
                                   f'{", ".join(WEIGHTS)} or all')
    chosen: List[PretrainedWeights] = []
    for name in names:
        if name.startswith('timm:') and name not in WEIGHTS:
            entry = timm_weights(name[len('timm:'):])
            chosen += [entry] if entry not in chosen else []
            continue
        entries = list(WEIGHTS.values()) if name == 'all' else [WEIGHTS.get(name)]
        if entries[0] is None:
            raise InvalidArgumentError('names', f'unknown weights {name!r} (known: '
                                       f'{", ".join(WEIGHTS)}, all, or timm:<model>)')
        chosen += [w for w in entries if w not in chosen]
    return chosen


def is_valid(path: str, weights: PretrainedWeights) -> Tuple[bool, str]:
    """Whether the file at ``path`` is usable as ``weights``, and why not.

    Files with a published checksum are checked against it; converted files (no
    published checksum) must load with ``weights_only=True`` and hold ``check_key``.
    """
    if weights.timm_model:
        problem = timm_fit_problem(path, weights.timm_model)
        return (False, problem) if problem else (True, '')
    if weights.sha256_prefix and not weights.converter:
        digest = file_sha256(path)
        if not digest.startswith(weights.sha256_prefix):
            return False, (f'SHA-256 {digest[:8]}..., expected {weights.sha256_prefix}... '
                           'as published')
        return True, ''
    import torch
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001  (damaged files fail in many ways)
        return False, f'does not load ({type(exc).__name__})'
    state = state.get('state_dict', state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or weights.check_key not in state:
        return False, f'has no {weights.check_key} (not converted to mmseg keys?)'
    return True, ''


def load_state_dict_file(path: str) -> dict:
    """The tensors of a ``.safetensors`` file, or of a torch checkpoint loaded with
    ``weights_only`` (its ``state_dict``/``model`` entry when it has one)."""
    if path.endswith('.safetensors') or _is_safetensors(path):
        from safetensors.torch import load_file
        return dict(load_file(path))
    import torch
    state = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def _is_safetensors(path: str) -> bool:
    """A safetensors file starts with the 8-byte length of its JSON header, then ``{``."""
    try:
        with open(path, 'rb') as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b'{' and int.from_bytes(head[:8], 'little') < 1 << 28


def timm_fit_problem(path: str, model: str) -> str:
    """Why ``path`` is not the state dict of the timm ``model`` (every key of the model,
    same shapes), or ``''``. Builds the model with random weights."""
    from ..models.backbones.timm_encoder import import_timm
    timm = import_timm()
    try:
        state = load_state_dict_file(path)
    except Exception as exc:  # noqa: BLE001  (damaged files fail in many ways)
        return f'does not load ({type(exc).__name__}: {str(exc)[:120]})'
    own = timm.create_model(model, pretrained=False).state_dict()
    return fit_problem(own, state, f'the {len(own)} keys of {model}', model)


def fit_problem(own: dict, state: dict, keys: str, owner: str,
                resized: Sequence[str] = ()) -> str:
    """Which keys of the state dict ``own`` the file's ``state`` lacks or holds with
    another shape (buffers derived at build time and tables in ``resized`` aside), in
    words, or ``''``. ``keys`` and ``owner`` name the two sides in the message."""
    missing = [k for k in own if k not in state and not any(d in k for d in _DERIVED_KEYS)]
    wrong = [k for k in own if k in state and hasattr(state[k], 'shape')
             and tuple(state[k].shape) != tuple(own[k].shape)
             and not any(r in k for r in resized)]
    parts = []
    if missing:
        parts.append(f'{len(missing)} of {keys} missing '
                     f'({", ".join(missing[:3])}{", ..." if len(missing) > 3 else ""})')
    if wrong:
        k = wrong[0]
        parts.append(f'{len(wrong)} of another shape ({k}: file {tuple(state[k].shape)}, '
                     f'{owner} {tuple(own[k].shape)})')
    return '; '.join(parts)


def published_sha256(headers: Any) -> Optional[str]:
    """The SHA-256 the Hugging Face Hub publishes for a large (LFS) file: its
    ``X-Linked-Etag`` (or ``ETag``) when that is 64 hex digits; else None."""
    if headers is None:
        return None
    for name in ('X-Linked-Etag', 'ETag'):
        value = (headers.get(name) or '').strip().strip('"')
        if value.startswith('W/'):
            value = value[2:].strip('"')
        if len(value) == 64 and all(c in '0123456789abcdef' for c in value.lower()):
            return value.lower()
    return None


def _download(url: str, dst: str, progress: bool, opener: Optional[Opener],
              limits: Optional[DownloadLimits], output: str) -> str:
    """Stream ``url`` into the file ``dst`` (within ``limits``,
    :func:`mmseg_ext.io.download.download_to`); return its SHA-256 (hex).

    Raises:
        ValueError: the server publishes a SHA-256 (Hugging Face Hub) that the file
            does not have.
        DownloadError: the download stalled or ran past its deadline.
        OutputError: ``dst`` could not be written (named as ``output``).
    """
    digest, headers = download_to(url, dst, output, limits=limits, opener=opener,
                                  progress=progress)
    published = published_sha256(headers)
    if published and digest != published:
        raise ValueError(f'SHA-256 {digest[:8]}..., the server publishes '
                         f'{published[:8]}...')
    return digest


def _write_file(path: str, data: bytes, output: str) -> None:
    """Write ``data`` to the temporary file ``path``; an error names ``output``.

    Serialisers write here through bytes in memory: ``torch.save`` to a path reports a
    full disk or ``EFBIG`` as a ``RuntimeError`` (``unexpected pos``) without the cause.
    """
    try:
        with open(path, 'wb') as f:
            f.write(data)
    except OSError as exc:
        raise output_error(output, exc) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f'HTTP {exc.code} {exc.reason}'
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, DownloadError):  # its message starts with the URL
        return str(exc).split(': ', 1)[-1]
    return f'{type(exc).__name__}: {exc}'


def load_converter(kind: str) -> Callable[[dict], dict]:
    """mmseg's own key converter (``beit2mmseg.convert_beit``) from the installed mmseg.

    Both stacks ship mmseg's ``tools/model_converters`` inside the package
    (``mmseg/.mim/tools/model_converters``).
    """
    import mmseg
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'model_converters',
                    f'{kind}2mmseg.py')
    if not osp.isfile(path):
        raise DataError(f'{path}: mmseg\'s {kind} converter is not installed with mmseg')
    spec = importlib.util.spec_from_file_location(f'_mmseg_{kind}2mmseg', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, f'convert_{kind}')


def convert_checkpoint(src: str, dst: str, kind: str, source: Optional[str] = None,
                       output: Optional[str] = None) -> None:
    """Load ``src`` (``weights_only``), convert its state dict, save it as ``dst``.

    ``source`` (the URL ``src`` was downloaded from) names the file in errors: ``src``
    is a temporary file that is gone by the time the user reads the message; likewise
    ``output`` (the file ``dst`` becomes) names ``dst`` when it cannot be written."""
    import torch
    try:
        ckpt = torch.load(src, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f'{source or src}: downloaded file does not load as a checkpoint '
                        f'({type(exc).__name__})') from None
    state = ckpt
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and key in state:
            state = state[key]
            break
    converted = load_converter(kind)(state)
    buffer = io.BytesIO()
    torch.save(dict(converted), buffer)
    _write_file(dst, buffer.getbuffer(), output or dst)


def _verify(path: str, weights: PretrainedWeights, url: str, config: Optional[str]) -> None:
    """Refuse a downloaded (and converted) file before it is published: it must hold the
    weights' key and, with ``config``, fit that config's backbone."""
    ok, why = is_valid(path, weights)
    if not ok:
        raise DataError(f'{url}: does not hold {weights.name} weights (the file {why}); '
                        'nothing written')
    problem = backbone_fit_problem(path, config) if config else ''
    if problem:
        raise DataError(f'{url}: does not fit the backbone of {config} ({problem}); '
                        'nothing written')


@contextlib.contextmanager
def _temp_file(folder: str, name: str) -> Iterator[str]:
    """A hidden temporary file beside the target; removed unless published (renamed)."""
    fd, path = temp_beside(osp.join(folder, name), suffix='.part')
    os.close(fd)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


#: backbone buffers computed at build time, never stored in pretrained files
_DERIVED_KEYS = ('relative_position_index', 'num_batches_tracked')
#: tables the backbones resize to their input size when they load pretrained weights
_RESIZED_KEYS = ('relative_position_bias_table', 'pos_embed', 'absolute_pos_embed')


def default_config(weights: PretrainedWeights) -> Optional[str]:
    """The first shipped config (a file, not a pattern) that uses ``weights``, when this
    checkout has it."""
    root = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                    'custom_configs')
    for name in weights.used_by:
        path = osp.join(root, name)
        if '*' not in name and osp.isfile(path):
            return path
    return None


def backbone_fit_problem(path: str, config: str) -> str:
    """Why the weights file ``path`` does not fit the backbone of ``config`` (keys and
    shapes; buffers the backbone derives and position tables it resizes on loading
    aside), or ``''``. Builds the backbone with random weights (no download)."""
    import copy

    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from ..config.loading import read_config
    cfg = read_config(config)
    backbone_cfg = copy.deepcopy(cfg.model.backbone)
    backbone_cfg.pop('init_cfg', None)
    backbone_cfg.pop('pretrained', None)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    own = MODELS.build(backbone_cfg).state_dict()
    state = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    state = {k[len('backbone.'):] if k.startswith('backbone.') else k: v
             for k, v in state.items()}
    return fit_problem(own, state, f'its {len(own)} keys', 'backbone', _RESIZED_KEYS)


#: the owner recorded beside a file :func:`fetch_weights` downloads
OWNER = 'get_weights'


def fetch_weights(weights: PretrainedWeights, out_dir: str = PRETRAIN_DIR,
                  urls: Optional[Sequence[str]] = None, force: bool = False,
                  progress: bool = True, opener: Optional[Opener] = None,
                  config: Optional[str] = None,
                  limits: Optional[DownloadLimits] = None) -> FetchResult:
    """Download ``weights`` into ``out_dir`` (checksum, conversion), unless a valid copy
    is already there.

    The file is written under a hidden temporary name and appears only when complete;
    an interruption or a failure leaves nothing behind.

    Args:
        urls: download from these instead of the registry's URLs (a mirror).
        force: download again even when a valid file is there, and replace it (only a
            file this function downloaded and that is unchanged since: its ownership
            record, :mod:`mmseg_ext.io.owned_file`).
        opener: opens a URL and returns a file-like response (for tests); default:
            urllib, watched by :class:`mmseg_ext.io.download.Watchdog`.
        config: the config whose backbone the file must fit before it is published
            (:func:`backbone_fit_problem`); default: the first shipped config that uses
            the weights (:func:`default_config`); nothing to check when there is none.
        limits: when a download is given up (a minimum rate, a deadline); default:
            :meth:`~mmseg_ext.io.download.DownloadLimits.from_env` (the defaults or
            ``MMSEG_EXT_DOWNLOAD_STALL`` / ``_MIN_KIB`` / ``_DEADLINE``).

    A folder the run creates for the file (``out_dir``, a ``timm/`` subfolder) is
    removed again, when still empty, if nothing is published.

    Raises:
        OutputExistsError: a file is there that fails its check, ``force`` is off, and
            ``force`` would replace it (this function downloaded it, unchanged since).
        OutputError: a file is there that fails its check and is not this function's
            own unchanged download (``force`` would not replace it either); or the file
            cannot be written (disk full, ``EFBIG``): named as the target, whatever
            temporary file was being written.
        DownloadError: every URL failed (an HTTP error, offline, stalled or past the
            deadline, a ``file://`` URL naming no regular file), or the download fails
            its checksum.
    """
    target = osp.join(out_dir, weights.filename)
    if osp.isfile(target) and not force:
        ok, why = is_valid(target, weights)
        if ok:
            return FetchResult(weights.name, target, 'present')
        problem = replace_problem(target, OWNER)
        if problem:  # not ours to replace, with force or without
            raise OutputError(f'{target}: exists but is not valid ({why}), and it {problem}; '
                              'not replacing it: move it away to download the weights')
        raise OutputExistsError(target, f'exists but is not valid ({why})')
    if force:  # only a file this tool downloaded, unchanged since
        check_replaceable_file(target, OWNER)
    created = _missing_folders(osp.dirname(osp.abspath(target)))
    try:
        return _fetch(weights, target, out_dir, urls, force, progress, opener, config, limits)
    except BaseException:
        _remove_empty_folders(created)  # a run that publishes nothing leaves no folder
        raise


def _fetch(weights: PretrainedWeights, target: str, out_dir: str,
           urls: Optional[Sequence[str]], force: bool, progress: bool,
           opener: Optional[Opener], config: Optional[str],
           limits: Optional[DownloadLimits]) -> FetchResult:
    """Try the URLs in turn and publish the first file that passes its checks as
    ``target`` (:func:`fetch_weights`, after its checks of an existing file)."""
    folder = make_parent(target)
    errors = []
    for url in urls or weights.urls or hub_urls(weights.hf_hub_id or ''):
        with _temp_file(folder, osp.basename(target)) as raw:
            try:
                digest = _download(url, raw, progress, opener, limits, target)
            except OutputError:
                raise  # the disk, not the server: another URL would fail the same way
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError,
                    DownloadError) as exc:
                errors.append(f'{url}: {_reason(exc)}')
                continue
            if weights.sha256_prefix and not digest.startswith(weights.sha256_prefix):
                errors.append(f'{url}: SHA-256 {digest[:8]}..., expected '
                              f'{weights.sha256_prefix}...')
                continue
            check = None if weights.timm_model else (config or default_config(weights))
            if weights.timm_model and not _is_safetensors(raw):  # pytorch_model.bin
                from safetensors.torch import save
                with _temp_file(folder, osp.basename(target)) as converted:
                    try:
                        data = save(load_state_dict_file(raw))
                    except Exception as exc:  # noqa: BLE001
                        raise DataError(f'{url}: downloaded file does not load as a '
                                        f'checkpoint ({type(exc).__name__})') from None
                    _write_file(converted, data, target)
                    _verify(converted, weights, url, None)
                    publish_file(converted, target, force, OWNER)
                return FetchResult(weights.name, target, 'downloaded', url, None)
            if weights.converter:
                with _temp_file(folder, osp.basename(target)) as converted:
                    convert_checkpoint(raw, converted, weights.converter, source=url,
                                       output=target)
                    _verify(converted, weights, url, check)
                    publish_file(converted, target, force, OWNER)
            else:
                _verify(raw, weights, url, check)
                publish_file(raw, target, force, OWNER)
            return FetchResult(weights.name, target, 'downloaded', url, check)
    raise DownloadError(
        f'{weights.name}: download failed ({"; ".join(errors)}); copy '
        f'{weights.filename} into {out_dir}/ yourself, or train from scratch with the '
        f'config setting {weights.override}')


def _missing_folders(folder: str) -> List[str]:
    """``folder`` and its parents that do not exist yet, deepest first: what
    :func:`~mmseg_ext.io.output_errors.make_parent` will create."""
    missing = []
    path = osp.abspath(folder)
    while not osp.lexists(path):
        missing.append(path)
        parent = osp.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def _remove_empty_folders(folders: Sequence[str]) -> None:
    """Remove ``folders`` (deepest first) that this run created, each only while empty
    (``rmdir`` refuses a folder that anything was put into meanwhile)."""
    for path in folders:
        with contextlib.suppress(OSError):
            os.rmdir(path)


"""Pretrained backbone weights: which files the shipped configs name, where they come
from, and fetching them (download, checksum, conversion to mmseg's key names).

The shipped configs name their backbone weights as local files under ``pretrain/`` so
that training never depends on a download in the middle of a run, and so that an
offline cluster works once the files are copied there. :func:`check_weights_exist` is
called before a runner is built; :func:`fetch_weights` is what
``tools/get_weights.py`` runs.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import io
import os
import os.path as osp
import urllib.error
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ..io.atomic import make_parent, output_error, publish_file, temp_beside
from ..io.download import DownloadLimits, Opener, download_to
from ..utils.errors import (
    DataError,
    DownloadError,
    InvalidArgumentError,
    MissingWeightsError,
    OutputError,
    OutputExistsError,
)

#: Where the shipped configs look for backbone weights (relative to the working dir).
PRETRAIN_DIR = 'pretrain'


@dataclass(frozen=True)
class PretrainedWeights:
    """One backbone checkpoint the shipped configs use.

    Attributes:
        name: the short name (``'beit-base'``).
        filename: the file name under ``pretrain/`` that the configs name.
        urls: where to download it from, tried in order (the original and mirrors).
        sha256_prefix: the leading hex digits of the file's SHA-256 where the publisher
            gives them (OpenMMLab puts 8 in the file name); checked after download.
        converter: ``'beit'`` when the download must be converted to mmseg's key names
            (with mmseg's own ``beit2mmseg`` converter) before use.
        check_key: a key the usable (converted) state dict must hold ('' for timm
            files, which are checked against the whole timm model).
        override: the ``--cfg-options`` setting that trains without the file.
        description: one line for ``--list``.
    """

    name: str
    filename: str
    urls: Tuple[str, ...]
    check_key: str
    override: str
    description: str
    sha256_prefix: Optional[str] = None
    converter: Optional[str] = None
    used_by: Tuple[str, ...] = field(default_factory=tuple)
    #: a timm model whose state dict the file is (checked against that model)
    timm_model: Optional[str] = None
    #: the Hugging Face Hub repository the file comes from (URLs made at fetch time, so
    #: that ``HF_ENDPOINT`` points them at a mirror)
    hf_hub_id: Optional[str] = None


_OPENMMLAB = ('https://download.openmmlab.com', 'https://mmassets.onedl.ai')


def _openmmlab(name: str, folder: str, filename: str, check_key: str, override: str,
               description: str, used_by: Tuple[str, ...]) -> PretrainedWeights:
    """A file of OpenMMLab's model zoo (its 8-hex SHA-256 prefix ends the file name),
    on the original host and on the maintained line's mirror."""
    return PretrainedWeights(
        name=name, filename=filename,
        urls=tuple(f'{host}/{folder}/{filename}' for host in _OPENMMLAB),
        sha256_prefix=filename.rsplit('-', 1)[1].split('.')[0], check_key=check_key,
        override=override, description=description, used_by=used_by)


#: the Hugging Face Hub, or the mirror ``HF_ENDPOINT`` names (as huggingface_hub reads it)
HF_DEFAULT_ENDPOINT = 'https://huggingface.co'
#: where timm weights go under ``pretrain/``
TIMM_DIR = 'timm'


def hub_urls(repo: str) -> Tuple[str, ...]:
    """The file URLs of a timm weights repository: safetensors first, then the pickle."""
    host = os.environ.get('HF_ENDPOINT', HF_DEFAULT_ENDPOINT).rstrip('/')
    return tuple(f'{host}/{repo}/resolve/main/{name}'
                 for name in ('model.safetensors', 'pytorch_model.bin'))


def timm_file(model: str) -> str:
    """The file (under ``pretrain/``) that holds the weights of the timm ``model``."""
    return f'{TIMM_DIR}/{model}.safetensors'


def _timm(name: str, model: str, description: str,
          used_by: Tuple[str, ...]) -> PretrainedWeights:
    return PretrainedWeights(
        name=name, filename=timm_file(model), urls=(), check_key='',
        override='model.backbone.pretrained=False', description=description,
        used_by=used_by, timm_model=model, hf_hub_id=f'timm/{model}')


def timm_weights(model: str) -> PretrainedWeights:
    """The entry of ``timm:<model>``: timm's published weights of ``model`` (a timm name,
    with or without its ``.tag``; without, timm's default tag), from the hub.

    Raises:
        InvalidArgumentError: timm does not know the model or publishes no weights.
    """
    from ..models.backbones.timm_encoder import import_timm
    timm = import_timm()
    from timm.models import get_pretrained_cfg
    cfg = get_pretrained_cfg(model)
    if cfg is None or not getattr(cfg, 'hf_hub_id', None):
        known = 'timm.list_pretrained() lists them'
        raise InvalidArgumentError('names', f'timm:{model}: timm {timm.__version__} has no '
                                   f'published weights of that name ({known})')
    full = cfg.hf_hub_id.split('/', 1)[1] if '/' in cfg.hf_hub_id else model
    return _timm(f'timm:{full}', full, f'timm {full} weights (Hugging Face Hub '
                 f'{cfg.hf_hub_id})', ())


WEIGHTS: Dict[str, PretrainedWeights] = {w.name: w for w in [
    PretrainedWeights(
        name='beit-base',
        filename='beit_base_patch16_224_pt22k_ft22k.pth',
        urls=('https://github.com/addf400/files/releases/download/v1.0/'
              'beit_base_patch16_224_pt22k_ft22k.pth',
              'https://conversationhub.blob.core.windows.net/beit-share-public/beit/'
              'beit_base_patch16_224_pt22k_ft22k.pth'),
        converter='beit', check_key='layers.0.attn.qkv.weight',
        override='model.pretrained=None',
        description='BEiT-B/16, ImageNet-22k pre-trained and fine-tuned (Microsoft); '
                    'converted to mmseg keys',
        used_by=('upernet_beit.py', 'trash/upernet_beit-*')),
    _openmmlab('swin-base', 'mmsegmentation/v0.5/pretrain/swin',
               'swin_base_patch4_window7_224_22k_20220317-4f79f7c0.pth',
               'patch_embed.projection.weight', 'model.backbone.init_cfg=None',
               'Swin-B, window 7, ImageNet-22k (mmseg keys, OpenMMLab)',
               ('upernet_swin.py', 'trash/upernet_swin-*', 'port/upernet_swin-*')),
    _openmmlab('hrnetv2-w18', 'pretrain/third_party', 'hrnetv2_w18-00eb2006.pth',
               'conv1.weight', 'model.pretrained=None',
               'HRNetV2-W18, ImageNet (MSRA; open-mmlab://msra/hrnetv2_w18)',
               ('ocrnet_hr18.py', 'trash/ocrnet_hr18_*')),
    _openmmlab('resnet101-v1c', 'pretrain/third_party', 'resnet101_v1c-e67eebb6.pth',
               'stem.0.weight', 'model.pretrained=None',
               'ResNet-101-V1c, ImageNet (open-mmlab://resnet101_v1c)',
               ('deeplabv3_r101.py', 'trash/deeplabv3_r101-*', 'camvid/deeplabv3_r101-*')),
    _openmmlab('mit-b2', 'mmsegmentation/v0.5/pretrain/segformer',
               'mit_b2_20220624-66e8bf70.pth', 'layers.0.0.projection.weight',
               'model.backbone.init_cfg=None',
               'MiT-B2 (SegFormer encoder), ImageNet-1k (mmseg keys, OpenMMLab)',
               ('segformer_mit-b2_multilabel_4xb2-20k_handbone-512x512.py',)),
    _timm('convnext-small', 'convnext_small.fb_in22k_ft_in1k',
          'ConvNeXt-S, ImageNet-22k then 1k (timm, Hugging Face Hub)',
          ('unet/unet_convnext-s_4xb2-20k_handbone-512x512.py',
           'unet/unet_convnext-s_4xb2-20k_handbone-1024x1024.py',
           'trash/unet_convnext-s_4xb4-20k_trash-512x512.py')),
    _timm('efficientnetv2-s', 'tf_efficientnetv2_s.in21k_ft_in1k',
          'EfficientNetV2-S, ImageNet-21k then 1k (timm, Hugging Face Hub)',
          ('unet/unet_efficientnetv2-s_4xb2-20k_handbone-512x512.py',)),
    _timm('resnext101-32x8d', 'resnext101_32x8d.fb_wsl_ig1b_ft_in1k',
          'ResNeXt-101 32x8d, Instagram-1B then ImageNet-1k (timm, Hugging Face Hub)',
          ('unet/unet_resnext101-32x8d_4xb2-20k_handbone-512x512.py',)),
    _timm('swin-tiny', 'swin_tiny_patch4_window7_224.ms_in22k_ft_in1k',
          'Swin-T, window 7, ImageNet-22k then 1k (timm, Hugging Face Hub)',
          ('unet/unet_swin-t_4xb2-20k_handbone-512x512.py',)),
]}


def weights_for_file(path: str) -> Optional[PretrainedWeights]:
    """The registry entry whose file ``path`` names, if any (timm files under
    ``timm/`` are known by their model name)."""
    path = path.replace(os.sep, '/')
    known = next((w for w in WEIGHTS.values()
                  if path == w.filename or path.endswith('/' + w.filename)), None)
    if known is None and f'/{TIMM_DIR}/' in f'/{path}' and path.endswith('.safetensors'):
        model = osp.basename(path)[:-len('.safetensors')]
        known = _timm(f'timm:{model}', model, '', ())
    return known


def pretrained_paths(model_cfg: Any, root: str = 'model') -> List[Tuple[str, str]]:
    """Local checkpoint files a model config loads at build time.

    Returns:
        ``(config key, path)`` for ``model.pretrained`` and every
        ``init_cfg=dict(type='Pretrained', checkpoint=...)``, URLs and
        ``open-mmlab://``-style names left out.
    """
    found: List[Tuple[str, str]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            pretrained = node.get('pretrained')
            if isinstance(pretrained, str) and where == root:
                found.append((f'{where}.pretrained', pretrained))
            if node.get('type') == 'TimmEncoder' and node.get('pretrained') and \
                    isinstance(node.get('checkpoint_path'), str) and node['checkpoint_path']:
                found.append((f'{where}.checkpoint_path', node['checkpoint_path']))
            init = node.get('init_cfg')
            for i, item in enumerate(init if isinstance(init, list) else [init]):
                if isinstance(item, dict) and item.get('type') == 'Pretrained' \
                        and isinstance(item.get('checkpoint'), str):
                    key = f'{where}.init_cfg' + (f'[{i}]' if isinstance(init, list) else '')
                    found.append((f'{key}.checkpoint', item['checkpoint']))
            for key, value in node.items():
                if key != 'init_cfg':
                    walk(value, f'{where}.{key}')
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f'{where}[{i}]')

    walk(model_cfg, root)
    return [(where, path) for where, path in found if '://' not in path]


def check_weights_exist(model_cfg: Any, config: str = 'the config') -> None:
    """Raise :class:`MissingWeightsError` for the first local weights file that is absent.

    The error names the registry entry that fetches the file (when there is one) and
    the config setting that trains without it.
    """
    for where, path in pretrained_paths(model_cfg):
        if osp.isfile(osp.expanduser(path)):
            continue
        known = weights_for_file(path)
        override = f'{where}=None' if known is None else known.override
        if known is None and where.endswith('.checkpoint'):
            override = f'{where.rsplit(".", 1)[0]}=None'
        if where.endswith('.checkpoint_path'):  # a TimmEncoder
            override = f'{where.rsplit(".", 1)[0]}.pretrained=False'
        raise MissingWeightsError(path, known.name if known else '', override)


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


def sha256_of(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def is_valid(path: str, weights: PretrainedWeights) -> Tuple[bool, str]:
    """Whether the file at ``path`` is usable as ``weights``, and why not.

    Files with a published checksum are checked against it; converted files (no
    published checksum) must load with ``weights_only=True`` and hold ``check_key``.
    """
    if weights.timm_model:
        problem = timm_fit_problem(path, weights.timm_model)
        return (False, problem) if problem else (True, '')
    if weights.sha256_prefix and not weights.converter:
        digest = sha256_of(path)
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

    from .runner_config import read_config
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
        force: download again even when a valid file is there, and replace it.
        opener: opens a URL and returns a file-like response (for tests); default:
            urllib, watched by :class:`mmseg_ext.io.download.Watchdog`.
        config: the config whose backbone the file must fit before it is published
            (:func:`backbone_fit_problem`); default: the first shipped config that uses
            the weights (:func:`default_config`); nothing to check when there is none.
        limits: when a download is given up (a minimum rate, a deadline); default:
            :meth:`~mmseg_ext.io.download.DownloadLimits.from_env` (the defaults or
            ``MMSEG_EXT_DOWNLOAD_STALL`` / ``_MIN_KIB`` / ``_DEADLINE``).

    Raises:
        OutputExistsError: a file is there that fails its check, and ``force`` is off.
        DownloadError: every URL failed (an HTTP error, offline, stalled or past the
            deadline), or the download fails its checksum.
        OutputError: the file cannot be written (disk full, ``EFBIG``): named as the
            target, whatever temporary file was being written.
    """
    target = osp.join(out_dir, weights.filename)
    if osp.isfile(target) and not force:
        ok, why = is_valid(target, weights)
        if ok:
            return FetchResult(weights.name, target, 'present')
        raise OutputExistsError(target, f'exists but is not valid ({why})')
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
                    publish_file(converted, target, force)
                return FetchResult(weights.name, target, 'downloaded', url, None)
            if weights.converter:
                with _temp_file(folder, osp.basename(target)) as converted:
                    convert_checkpoint(raw, converted, weights.converter, source=url,
                                       output=target)
                    _verify(converted, weights, url, check)
                    publish_file(converted, target, force)
            else:
                _verify(raw, weights, url, check)
                publish_file(raw, target, force)
            return FetchResult(weights.name, target, 'downloaded', url, check)
    raise DownloadError(
        f'{weights.name}: download failed ({"; ".join(errors)}); copy '
        f'{weights.filename} into {out_dir}/ yourself, or train from scratch with the '
        f'config setting {weights.override}')

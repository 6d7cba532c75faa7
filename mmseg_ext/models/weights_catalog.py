"""Which pretrained backbone files the shipped configs name, and where they come from.

The catalogue only: the entries (:data:`WEIGHTS`, timm models by name) and the local
files a model config loads at build time (:func:`pretrained_paths`). Fetching them
(download, checksum, conversion) is :mod:`mmseg_ext.training.weights`; the check that
they exist before a run is :func:`mmseg_ext.config.checks.check_weights_exist`.

The shipped configs name their backbone weights as local files under ``pretrain/`` so
that training never depends on a download in the middle of a run, and so that an
offline cluster works once the files are copied there.
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..utils.errors import (
    InvalidArgumentError,
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
    from .backbones.timm_encoder import import_timm
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

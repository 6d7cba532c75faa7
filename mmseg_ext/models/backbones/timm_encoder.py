"""Any timm model with ``features_only`` support as the backbone of mmseg heads.

mmseg ships ``TIMMBackbone``, a thin call of ``timm.create_model(features_only=True)``.
It falls short for what this project's heads need:

* transformer encoders of timm (Swin, MaxViT, ...) return their levels channels-last
  ``(N, H, W, C)``; mmseg heads expect ``(N, C, H, W)``. Here every level is returned
  channels-first, whatever the encoder's own layout;
* the channels and strides of the levels are needed to configure a head; here they are
  attributes (``out_channels``, ``strides``, read from timm's ``feature_info``). A
  multi-label segmentor refuses a head whose ``in_channels`` disagree at build time
  (:func:`check_head_fits`); the U-Net heads check the channels they receive at their
  first forward. Either is one line instead of a shape error deep in a convolution;
* weights: ``pretrained=True`` asks timm for the hub weights (network or the local
  Hugging Face cache); ``checkpoint_path`` reads a local file (what
  ``tools/get_weights.py`` writes); offline without either is one clear error.

timm is imported when an encoder is built, so the rest of the plugin works without it
(``tools/install.sh`` installs it where a matching torchvision exists).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.errors import ConfigError, EnvironmentCheckError

TIMM_HINT = ('pip install -r requirements/timm.txt (timm needs the torchvision built for '
             'your torch; tools/install.sh explains when none exists)')


def import_timm():
    """``timm``, or one error naming the fix."""
    try:
        import timm
    except ImportError as exc:
        raise EnvironmentCheckError(f'TimmEncoder needs timm, which does not import here '
                                    f'({exc}); {TIMM_HINT}') from None
    return timm


@MODELS.register_module()
class TimmEncoder(BaseModule):
    """A timm encoder's feature levels, channels-first.

    Args:
        model_name: the timm model (``'convnext_small'``, ``'efficientnetv2_rw_s'``,
            ``'resnext101_32x8d'``, ``'swin_tiny_patch4_window7_224'``, ...).
        out_indices: timm's indices of the levels to return (default: all).
        pretrained: load pretrained weights: from ``checkpoint_path`` when given (what
            ``tools/get_weights.py timm:<model>`` writes), else timm's published ones
            from the Hugging Face Hub or its cache. False: random initialisation.
        checkpoint_path: the local weights file (used only with ``pretrained``).
        in_channels: input image channels.
        channels_last: keep the encoder in the channels-last memory format (faster
            convolutions with AMP on recent GPUs); outputs are still ``(N, C, H, W)``.
        init_cfg: mmengine initialisation (usually None: timm initialises).
        **timm_kwargs: other ``timm.create_model`` arguments (``drop_path_rate``,
            ``img_size`` for encoders with a fixed size, ...).

    Attributes:
        out_channels: channels of each returned level.
        strides: input pixels per feature pixel of each returned level.

    Shapes: ``(N, in_channels, H, W)`` -> tuple of ``(N, out_channels[i], H / strides[i],
    W / strides[i])`` (rounded as the encoder's convolutions round).
    """

    def __init__(self, model_name: str, out_indices: Optional[Sequence[int]] = None,
                 pretrained: bool = False, checkpoint_path: str = '',
                 in_channels: int = 3, channels_last: bool = False,
                 init_cfg: Optional[dict] = None, **timm_kwargs) -> None:
        super().__init__(init_cfg)
        timm = import_timm()
        if not isinstance(model_name, str) or not model_name:
            raise ConfigError(f'TimmEncoder: model_name must be a timm model name, got '
                              f'{model_name!r}')
        kwargs = dict(features_only=True, pretrained=bool(pretrained), in_chans=in_channels,
                      **timm_kwargs)
        if out_indices is not None:
            kwargs['out_indices'] = tuple(out_indices)
        if pretrained and checkpoint_path:  # the local file instead of the hub
            kwargs['pretrained_cfg_overlay'] = dict(file=checkpoint_path)
        try:
            self.model = timm.create_model(model_name, **kwargs)
        except RuntimeError as exc:
            if 'Unknown model' in str(exc) or 'Unknown' in str(exc):
                raise ConfigError(f'TimmEncoder: timm has no model {model_name!r} (timm.'
                                  'list_models() lists them)') from None
            raise
        except (IndexError, AssertionError) as exc:
            if out_indices is not None:
                why = str(exc) or 'out of range'
                raise ConfigError(f'TimmEncoder: out_indices {tuple(out_indices)} do not '
                                  f'fit the levels of {model_name!r} ({why})') from None
            raise
        except (OSError, ValueError) as exc:
            if pretrained:
                raise ConfigError(f'TimmEncoder: cannot load the weights of {model_name!r} '
                                  f'({type(exc).__name__}: {str(exc)[:200]}); python '
                                  f'tools/get_weights.py timm:{model_name}, or '
                                  'pretrained=False') from None
            raise
        self.model_name = model_name
        info = self.model.feature_info
        self.out_channels: Tuple[int, ...] = tuple(int(c) for c in info.channels())
        self.strides: Tuple[int, ...] = tuple(int(r) for r in info.reduction())
        fmt = getattr(self.model, 'output_fmt', None)
        fmt = getattr(fmt, 'name', fmt)
        self.channels_last_output = str(fmt).upper() == 'NHWC'
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def init_weights(self) -> None:
        """timm initialised (or loaded) the weights; only an explicit ``init_cfg`` acts."""
        if self.init_cfg is not None:
            super().init_weights()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        feats = self.model(x)
        if self.channels_last_output:
            feats = [f.permute(0, 3, 1, 2) for f in feats]
        return tuple(f.contiguous() for f in feats)


def check_head_fits(encoder: TimmEncoder, head, where: str) -> None:
    """Refuse a built decode head whose ``in_channels`` are not the channels of the
    encoder levels it reads (``in_index``).

    Raises:
        ConfigError: naming both lists.
    """
    in_index, in_channels = getattr(head, 'in_index', None), getattr(head, 'in_channels', None)
    if in_index is None or in_channels is None:
        return
    indices = list(in_index) if isinstance(in_index, (list, tuple)) else [in_index]
    wanted = list(in_channels) if isinstance(in_channels, (list, tuple)) else [in_channels]
    try:
        have = [encoder.out_channels[i] for i in indices]
    except IndexError:
        raise ConfigError(f'{where}: in_index {in_index} reads levels the encoder does not '
                          f'return (it returns {len(encoder.out_channels)})') from None
    if len(wanted) == len(have) and have != wanted:
        raise ConfigError(f'{where}: in_channels {wanted}, but the {encoder.model_name} '
                          f'levels {indices} have {have} channels')

"""Backbones: timm encoders as mmseg backbones (timm imported when one is built)."""
from .timm_encoder import TimmEncoder, check_head_fits

__all__ = ['TimmEncoder', 'check_head_fits']

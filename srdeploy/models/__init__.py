"""Super-resolution networks: built-in architectures, checkpoint loading, reference models."""

from srdeploy.models.base import Architecture, SRModel, SRNetwork
from srdeploy.models.loading import load_model, load_state_dict, save_checkpoint
from srdeploy.models.registry import ARCHITECTURES, detect_architecture, get_architecture

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "SRModel",
    "SRNetwork",
    "detect_architecture",
    "get_architecture",
    "load_model",
    "load_state_dict",
    "save_checkpoint",
]

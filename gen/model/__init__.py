"""The model frontend: fetch a pretrained checkpoint, load it, and compile it for the
accelerator (:mod:`gen.model.fetch`, :mod:`gen.model.checkpoint`, :mod:`gen.model.encoder`)."""

from .checkpoint import MODELS_EXTRA, Checkpoint, load_checkpoint
from .fetch import fetch_model, model_dir

__all__ = ["MODELS_EXTRA", "Checkpoint", "load_checkpoint", "fetch_model", "model_dir"]

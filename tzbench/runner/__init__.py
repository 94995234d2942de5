"""Training and evaluation of SR models, recorded in the store."""

from tzbench.runner.checkpoint import CheckpointError, load_sr_checkpoint, save_checkpoint
from tzbench.runner.evaluate import evaluate
from tzbench.runner.train import train

__all__ = ["CheckpointError", "load_sr_checkpoint", "save_checkpoint", "evaluate", "train"]

"""Built-in training loggers of tzbench: ``tensorboard`` (needs the ``tensorboard`` extra)."""

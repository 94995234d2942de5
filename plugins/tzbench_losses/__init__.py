"""tzbench_losses built-in tzbench plugin."""

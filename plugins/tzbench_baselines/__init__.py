"""tzbench_baselines built-in tzbench plugin."""

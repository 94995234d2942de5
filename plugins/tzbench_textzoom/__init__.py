"""tzbench_textzoom built-in tzbench plugin."""

"""tzbench_tsrn built-in tzbench plugin."""

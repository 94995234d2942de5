"""tzbench_recognizers built-in tzbench plugin."""

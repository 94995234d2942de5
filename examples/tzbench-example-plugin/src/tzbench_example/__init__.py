"""Example tzbench plugin package."""

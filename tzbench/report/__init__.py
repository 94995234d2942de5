"""Reports from the store: paper-style tables, plots and image grids; the reproduce driver."""

"""Model sharing across stores: files are joined by the sha256 of their content."""

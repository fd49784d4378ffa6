"""The inference runtime: precision and CPU decisions made by measurement (more to come)."""

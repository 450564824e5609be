"""Image data: where it is stored and how it is checked."""

"""Shape and memory widgets for the chapters."""

"""Veil image engine: detectors, masking and image I/O as plain, framework-free modules."""

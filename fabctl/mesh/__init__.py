"""Geometry: mesh intake, validation, orientation, supports, slicing (trimesh style, vectorised numpy)."""

"""Minimal stand-in for the `diffusers` package (see ../README.md); holds no diffusers code."""

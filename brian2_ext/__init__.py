"""brian2_ext package."""

"""pynn_ext package."""

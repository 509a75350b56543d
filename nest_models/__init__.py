"""nest_models package."""

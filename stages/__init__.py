"""Training stages (stage 1: ReferenceNet + pose guider; stage 2: motion modules)."""

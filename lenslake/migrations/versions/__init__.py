"""The migration scripts, applied in id order by ``lenslake migrate up`` (loaded from their files by the runner)."""

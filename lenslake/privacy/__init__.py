"""Privacy: keys, tokenization and encryption (the privacy issue adds scrubbing, consent and erasure here)."""

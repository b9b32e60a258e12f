"""Embeddings and the vector store: the encoder (all-MiniLM-L6-v2, offline), LanceDB tables versioned by model and
tagged per publish, their validation, user embeddings and k-means segments, and an in-memory ANN index for serving.

Heavy libraries (torch, sentence-transformers, lancedb, scikit-learn) are imported inside the functions that use them.
"""

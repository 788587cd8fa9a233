"""Finding layers by path, putting adapters in, taking them out."""

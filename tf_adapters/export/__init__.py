"""Exporting models as versioned SavedModels for TF Serving."""

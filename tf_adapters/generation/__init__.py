"""Generation as graph functions: the causal LM endpoints that SavedModels
serve and that evaluation runs, and their tensor-only samplers."""

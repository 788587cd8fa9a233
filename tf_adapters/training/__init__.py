"""Task models and the fine-tuning job."""

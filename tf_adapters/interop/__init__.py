"""Other formats: PEFT adapter folders, keras-hub `.lora.h5` files and
Hugging Face checkpoints of merged models."""

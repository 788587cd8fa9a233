"""GGUF files (llama.cpp's format) converted into keras-hub models."""

"""Data: sources → cleaning → splits → tokenized, packed tf.data pipelines."""

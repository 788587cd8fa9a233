"""Client side of TF Serving: request builders and response decoders."""

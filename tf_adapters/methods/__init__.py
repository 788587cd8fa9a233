"""Adapter methods, one folder each: config, layers and injection plan."""

"""The `tf-adapters` command line: a thin shell over the library."""

"""Building blocks shared by every adapter method."""

"""Model families: default adapter targets per keras-hub backbone."""

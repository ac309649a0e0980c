"""Every settings model, one module per config section. The bottom layer of the core: imports nothing above it."""

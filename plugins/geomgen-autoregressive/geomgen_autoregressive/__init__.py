"""geomgen's 'autoregressive' generator plugin (registered through the public hooks)."""

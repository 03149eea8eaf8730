"""geomgen's 'gan' generator plugin (registered through the public hooks)."""

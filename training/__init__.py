"""Scripts that build nano-starcoder, the small model the playground ships."""

"""Image I/O, the SR evaluation protocol's colour and degradation, and named image sets."""

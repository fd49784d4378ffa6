"""Scripts that regenerate the weights of packaged presets (run with ``python -m``)."""

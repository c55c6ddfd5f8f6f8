"""The steps of a build (pipeline.py chains them): prepare a context, then plan -> plan steps (sparsity,
equalize, calibrate, refine), then emit the graphs of every profile and tier."""

"""Video in and out: decoding clips, the built-in sample set, writing frames to a file."""

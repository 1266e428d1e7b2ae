"""Content stage of the detection core: prompt text in, hashes, sketches and cue scores out."""

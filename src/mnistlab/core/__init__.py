"""The bottom layer: errors, paths, atomic files, the Config and its knobs, presets and the book's data, statistics. Imports nothing of mnistlab above it."""

"""The command line: the parser (arguments) and one library call per command (main)."""

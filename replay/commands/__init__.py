"""The command line: option parsing, one call of the stage below, printing."""

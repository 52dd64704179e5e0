"""``replay branch``: plan the branches a grid needs, train them from checkpoints, for
replay record's runs and a user's own model."""

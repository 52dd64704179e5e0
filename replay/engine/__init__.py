"""Pure decision rules: the Keras callbacks' policies, other frameworks' dialects, Optuna's
pruners, range parsing, branch planning. No I/O, no pandas."""

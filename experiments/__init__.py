"""One experiment's life: the config schema, the search driver on Ray Tune, the history store, the CLI and the
dashboard. experiments/configs/*.yaml are ready-made experiments."""

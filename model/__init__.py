"""TRAIN: a project's model of its contract, its evaluation and its model card."""

"""TRAIN: the diabetes risk model, its evaluation and its model card."""

"""DATA: synthetic PHI-shaped patients, Safe Harbor de-identification, dataset versions."""

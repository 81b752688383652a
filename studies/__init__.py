"""studies: sweeps, experiments, calibration and power, built on runs and the analysis."""

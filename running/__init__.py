"""running: a run of a scenario: plan, start and resume a run folder, the live run, the run summary."""

"""Labels the platform puts on the resources it creates for users (a tuning job's trial jobs), in one
place so every layer that reads them agrees."""

TUNING_JOB = "strato.io/tuning-job"  # the tuning job a trial job belongs to (its name)
TUNING_UID = "strato.io/tuning-uid"  # ... and its uid (names can be reused after a delete)
TRIAL = "strato.io/trial"  # the trial's number in its tuning job

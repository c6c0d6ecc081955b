"""The kinds of lineage nodes and the relations between them (one place, so every recorder agrees)."""

DATASET = "dataset"  # key: <uri>@<fingerprint or table version>; name: the URI
CODE = "code"  # key: content hash of the code snapshot; name: where it came from
JOB = "job"  # key: the TrainingJob's uid; name: its name
TUNING_JOB = "tuning_job"  # key: uid; name: its name
RUN = "run"  # key: the MLflow run id; name: the run's name
MODEL_VERSION = "model_version"  # key and name: <model>/<version>
ENDPOINT = "endpoint"  # key: uid; name: its name
FEATURE_VIEW = "feature_view"
PIPELINE_RUN = "pipeline_run"
BATCH_TRANSFORM = "batch_transform"  # key: uid; name: its name

NODE_KINDS = (
    DATASET, CODE, JOB, TUNING_JOB, RUN, MODEL_VERSION, ENDPOINT, FEATURE_VIEW, PIPELINE_RUN, BATCH_TRANSFORM,
)

# Relations, read "src <relation> dst".
INPUT_OF = "input_of"  # dataset -> job
CODE_OF = "code_of"  # code -> job
TRIAL_OF = "trial_of"  # job -> tuning_job
TRACKED_AS = "tracked_as"  # job or tuning_job -> run
PRODUCED = "produced"  # run -> model_version
DEPLOYED_TO = "deployed_to"  # model_version -> endpoint
SOURCE_OF = "source_of"  # lake table version -> feature_view
STEP_OF = "step_of"  # job -> pipeline_run
FEATURES_OF = "features_of"  # lake table version or feature_view -> training dataset

"""The environment a training script sees: SageMaker script mode, Vertex AI custom training and
Strato's own names, all pointing at the same local directories, so a script written for either cloud
runs unchanged.

Layout of a task's working directory (SageMaker's /opt/ml, relative to the task):

    code/                     the code snapshot; the command runs here
    input/data/<channel>/     each input channel, materialized before the command starts
    input/config/             hyperparameters.json, resourceconfig.json, inputdataconfig.json
    model/                    SM_MODEL_DIR / AIP_MODEL_DIR, uploaded at the end
    output/data/              SM_OUTPUT_DATA_DIR, uploaded at the end
    checkpoints/              SM/AIP checkpoint dir
    tensorboard/              AIP_TENSORBOARD_LOG_DIR

Each worker of a distributed job is one "host" (``algo-1`` ... ``algo-N``, as SageMaker names them)
whose rank is its index: ``Cluster`` holds where a worker stands and what it is told.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SINGLE_CLUSTER_SPEC = {"cluster": {"workerpool0": ["localhost:2222"]}, "task": {"type": "workerpool0", "index": 0}}
# Channel names Vertex AI scripts read through AIP_*_DATA_URI.
VERTEX_CHANNELS = {
    "AIP_TRAINING_DATA_URI": ("train", "training"),
    "AIP_VALIDATION_DATA_URI": ("validation", "val", "eval"),
    "AIP_TEST_DATA_URI": ("test", "testing"),
}


class JobDirs:
    # A plain class: ``dataclasses`` costs ~20 ms of imports in every task's runner.
    __slots__ = ("root",)

    def __init__(self, root: Path):
        self.root = root

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def config(self) -> Path:
        return self.root / "input" / "config"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def create(self, channels: list[str]) -> None:
        for path in (self.code, self.config, self.model, self.output_data, self.checkpoints, self.tensorboard):
            path.mkdir(parents=True, exist_ok=True)
        for name in channels:
            self.channel(name).mkdir(parents=True, exist_ok=True)


class Cluster:
    """One worker's place in its gang: ``rank`` of ``size``, the ``distribution`` it was asked for, and
    ``addr`` plus one port per worker where the gang meets (the first is torch's ``MASTER_PORT``).

    Every worker is its own host, so ``LOCAL_RANK`` is 0 and ``LOCAL_WORLD_SIZE`` 1 (one process per
    host, as ``torchrun --nproc_per_node 1`` on each of N machines). ``distribution: none`` gets hosts
    and ranks only; ``torch`` adds what ``torchrun`` sets, so ``init_process_group()`` reads it from
    the environment. ``restarts`` (attempts before this one) becomes ``TORCHELASTIC_RESTART_COUNT``.
    """

    __slots__ = ("addr", "distribution", "ports", "rank", "restarts", "run_id", "size")

    def __init__(
        self,
        rank: int = 0,
        size: int = 1,
        distribution: str = "none",
        addr: str = "127.0.0.1",
        ports: list[int] | None = None,
        restarts: int = 0,
        run_id: str = "",
    ):
        self.rank, self.size, self.distribution = rank, size, distribution
        self.addr, self.ports, self.restarts, self.run_id = addr, list(ports or []), restarts, run_id

    @classmethod
    def from_payload(cls, data: dict[str, Any] | None) -> Cluster:
        return cls(**(data or {}))

    def to_payload(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @property
    def hosts(self) -> list[str]:
        return [f"algo-{n + 1}" for n in range(self.size)]

    @property
    def host(self) -> str:
        return self.hosts[self.rank]

    def resource_config(self) -> dict[str, Any]:
        return {"current_host": self.host, "hosts": self.hosts, "network_interface_name": "lo"}

    def addresses(self) -> list[str]:
        return [f"{self.addr}:{port}" for port in self.ports]

    def vertex_cluster_spec(self) -> dict[str, Any]:
        """Vertex's CLUSTER_SPEC: the chief (rank 0) is worker pool 0, the others worker pool 1."""
        addresses = self.addresses()
        if not addresses:
            return SINGLE_CLUSTER_SPEC
        cluster = {"workerpool0": addresses[:1], **({"workerpool1": addresses[1:]} if self.size > 1 else {})}
        task = {"type": "workerpool0", "index": 0}
        if self.rank > 0:
            task = {"type": "workerpool1", "index": self.rank - 1}
        return {"cluster": cluster, "task": task}

    def tf_config(self) -> dict[str, Any]:
        addresses = self.addresses()
        cluster = {"chief": addresses[:1], **({"worker": addresses[1:]} if self.size > 1 else {})}
        task = {"type": "chief", "index": 0} if self.rank == 0 else {"type": "worker", "index": self.rank - 1}
        return {"cluster": cluster, "task": task, "environment": "cloud"}

    def environment(self) -> dict[str, str]:
        env = {
            "SM_HOSTS": json.dumps(self.hosts),
            "SM_CURRENT_HOST": self.host,
            "SM_RESOURCE_CONFIG": json.dumps(self.resource_config()),
            "STRATO_RANK": str(self.rank),
            "STRATO_WORLD_SIZE": str(self.size),
            "CLUSTER_SPEC": json.dumps(self.vertex_cluster_spec()),
        }
        if self.size > 1 and self.ports:
            env["TF_CONFIG"] = json.dumps(self.tf_config())
        if self.distribution == "torch":
            env.update(
                RANK=str(self.rank),
                LOCAL_RANK="0",
                WORLD_SIZE=str(self.size),
                LOCAL_WORLD_SIZE="1",
                GROUP_RANK=str(self.rank),
                GROUP_WORLD_SIZE=str(self.size),
                NODE_RANK=str(self.rank),
                ROLE_NAME="default",
                ROLE_RANK=str(self.rank),
                ROLE_WORLD_SIZE=str(self.size),
                MASTER_ADDR=self.addr,
                MASTER_PORT=str(self.ports[0]),
                TORCHELASTIC_RESTART_COUNT=str(self.restarts),
                TORCHELASTIC_RUN_ID=self.run_id,
            )
        return env


def hyperparameter_args(hyperparameters: dict[str, Any]) -> list[str]:
    """``{"max_depth": 4}`` -> ``["--max_depth", "4"]``, as SageMaker passes them to the script."""
    args: list[str] = []
    for name, value in hyperparameters.items():
        args += [f"--{name}", hyperparameter_text(value)]
    return args


def hyperparameter_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def _vertex_data_uri(channel_dir: Path) -> str:
    files = [p for p in channel_dir.rglob("*") if p.is_file()]
    return str(files[0]) if len(files) == 1 else str(channel_dir / "*")


def script_environment(
    dirs: JobDirs,
    *,
    job_name: str,
    channels: list[str],
    hyperparameters: dict[str, Any],
    cpus: float,
    gpus: int,
    user_args: list[str],
    entry: str,
    cluster: Cluster | None = None,
) -> dict[str, str]:
    """Every variable the three platforms' training scripts read."""
    cluster = cluster or Cluster()
    hps_text = {k: hyperparameter_text(v) for k, v in hyperparameters.items()}
    num_cpus = max(1, int(cpus))
    input_data_config = {c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"} for c in channels}
    env: dict[str, str] = {
        # Strato
        "STRATO_JOB_NAME": job_name,
        "STRATO_MODEL_DIR": str(dirs.model),
        "STRATO_OUTPUT_DIR": str(dirs.output_data),
        "STRATO_CHECKPOINT_DIR": str(dirs.checkpoints),
        "STRATO_HYPERPARAMETERS": json.dumps(hyperparameters),
        # SageMaker script mode (sagemaker-training-toolkit names)
        "SM_MODEL_DIR": str(dirs.model),
        "SM_INPUT_DIR": str(dirs.input),
        "SM_INPUT_CONFIG_DIR": str(dirs.config),
        "SM_OUTPUT_DIR": str(dirs.output),
        "SM_OUTPUT_DATA_DIR": str(dirs.output_data),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(dirs.output / "intermediate"),
        "SM_CHECKPOINT_DIR": str(dirs.checkpoints),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_USER_ARGS": json.dumps(user_args),
        "SM_NUM_CPUS": str(num_cpus),
        "SM_NUM_GPUS": str(gpus),
        "SM_NUM_NEURONS": "0",
        "SM_CURRENT_INSTANCE_TYPE": "local",
        "SM_NETWORK_INTERFACE_NAME": "lo",
        "SM_INPUT_DATA_CONFIG": json.dumps(input_data_config),
        "SM_MODULE_DIR": str(dirs.code),
        "SM_USER_ENTRY_POINT": entry,
        "SM_LOG_LEVEL": "20",
        "SM_TRAINING_ENV": json.dumps(
            {
                "job_name": job_name,
                "hyperparameters": hyperparameters,
                "channel_input_dirs": {c: str(dirs.channel(c)) for c in channels},
                "model_dir": str(dirs.model),
                "output_data_dir": str(dirs.output_data),
                "current_host": cluster.host,
                "hosts": cluster.hosts,
                "num_cpus": num_cpus,
                "num_gpus": gpus,
                "user_entry_point": entry,
            }
        ),
        # Vertex AI custom training
        "AIP_MODEL_DIR": str(dirs.model),
        "AIP_CHECKPOINT_DIR": str(dirs.checkpoints),
        "AIP_TENSORBOARD_LOG_DIR": str(dirs.tensorboard),
        "AIP_DATA_FORMAT": "csv",
        "CLOUD_ML_JOB_ID": job_name,
        "CLOUD_ML_PROJECT_ID": "local",
        **cluster.environment(),
    }
    for channel in channels:
        key = channel.upper().replace("-", "_")
        env[f"SM_CHANNEL_{key}"] = str(dirs.channel(channel))
        env[f"STRATO_INPUT_{key}"] = str(dirs.channel(channel))
    for name, value in hps_text.items():
        env[f"SM_HP_{name.upper().replace('-', '_')}"] = value
    for variable, names in VERTEX_CHANNELS.items():
        match = next((c for c in channels if c.lower() in names), None)
        if match is not None:
            env[variable] = _vertex_data_uri(dirs.channel(match))
    return env


def write_config_files(
    dirs: JobDirs, hyperparameters: dict[str, Any], channels: list[str], cluster: Cluster | None = None
) -> None:
    """The /opt/ml/input/config files SageMaker containers read."""
    (dirs.config / "hyperparameters.json").write_text(
        json.dumps({k: hyperparameter_text(v) for k, v in hyperparameters.items()})
    )
    (dirs.config / "resourceconfig.json").write_text(json.dumps((cluster or Cluster()).resource_config()))
    (dirs.config / "inputdataconfig.json").write_text(json.dumps({c: {"TrainingInputMode": "File"} for c in channels}))

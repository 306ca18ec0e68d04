"""The project's defaults, from the answers given when it was generated.

No need to edit this file unless you want to change a default for everyone who runs
the project: where flows compute when nobody says, the embedded cluster's layout, the
Coiled cluster's shape. For one run, or one machine, set the setting's environment
variable instead: ``{{ cookiecutter.package_name | upper }}_`` and its name here, e.g.
``{{ cookiecutter.package_name | upper }}_COILED_N_WORKERS=8``. What each setting means and
what it takes: ``docs/settings.md``; why each default is what it is: ``docs/design.md``.
"""

ENV_PREFIX = "{{ cookiecutter.package_name | upper }}_"
"""Prefix of every environment variable the project reads."""

DISTRIBUTION = {{ cookiecutter.project_slug | literal }}
PYTHON_VERSION = "{{ cookiecutter.python_version }}"
PROJECT_TAG = DISTRIBUTION  # Coiled clusters are named and tagged with it

# local, coiled, gateway, or a running scheduler's address such as tcp://host:8786
CLUSTER = "{{ cookiecutter.default_cluster }}"

# The embedded cluster (docs/design.md: "The embedded cluster").
LOCAL_N_WORKERS = "2"
LOCAL_THREADS_PER_WORKER = "1"
LOCAL_PROCESSES = "true"

# Coiled clusters. Empty means "Coiled's own default".
COILED_WORKSPACE = {{ cookiecutter.coiled_workspace | literal }}
COILED_REGION = {{ cookiecutter.coiled_region | literal }}
COILED_N_WORKERS = {{ cookiecutter.coiled_n_workers | literal }}
COILED_WORKER_CPU = {{ cookiecutter.coiled_worker_cpu | literal }}
COILED_WORKER_MEMORY = {{ cookiecutter.coiled_worker_memory | literal }}
COILED_IDLE_TIMEOUT = {{ cookiecutter.coiled_idle_timeout | literal }}
COILED_SPOT_POLICY = {{ cookiecutter.coiled_spot_policy | literal }}
COILED_NAME = ""  # a fixed name reuses a running cluster of that name (and still shuts it down at the end)
COILED_NO_CLIENT_TIMEOUT = "2 minutes"  # backstop for a client that vanished (docs/design.md: "Closing clusters")
COILED_KEEP = "false"  # keep the cluster for the next run (docs/clusters.md: "Warm clusters")

# Clusters the project does not start (--cluster tcp://host:8786, or --cluster gateway).
CONNECT_TIMEOUT_SECONDS = "5"
GATEWAY_ADDRESS = ""  # empty: dask's own gateway.address configuration
GATEWAY_N_WORKERS = "2"

# Kept results of costly tasks, restored by `run --resume` (docs/resume.md).
RESULTS = ".results"  # a folder, relative to the project folder; or s3://..., gs://..., abfs://...
RESUME = "false"  # true: every run restores kept results (for prefect run -p, which has no --resume)

# Retries of tasks that failed for a passing reason (docs/design.md: "Retries").
TASK_RETRIES = 2
RETRY_DELAY_SECONDS = "5"

# Runs nobody watches (docs/unattended.md): where every run is recorded, and who hears of it.
HISTORY = ".runs.sqlite"  # relative to the project folder; "" keeps no history
SLACK_WEBHOOK_URL = ""  # a secret: set it in the environment, never here (a commit would publish it)
NOTIFY_ON = "failure"  # or "always"

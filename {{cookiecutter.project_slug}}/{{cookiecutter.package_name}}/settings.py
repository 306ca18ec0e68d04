"""The project's defaults, from the answers given when it was generated.

No need to edit this file unless you want to change a default for everyone who runs
the project: where flows compute when nobody says, the embedded cluster's layout, the
Coiled cluster's shape. For one run, or one machine, set the environment variable
named beside each value instead (``<PREFIX>_<GROUP>_<KEY>``, e.g.
``{{ cookiecutter.package_name | upper }}_COILED_N_WORKERS=8``). Why each default is what it is:
``docs/design.md``.
"""

ENV_PREFIX = "{{ cookiecutter.package_name | upper }}_"
"""Prefix of every environment variable the project reads."""

DISTRIBUTION = {{ cookiecutter.project_slug | literal }}
PYTHON_VERSION = "{{ cookiecutter.python_version }}"
PROJECT_TAG = DISTRIBUTION  # Coiled clusters are named and tagged with it

# local, coiled, gateway, or a running scheduler's address such as tcp://host:8786
DEFAULT_BACKEND = "{{ cookiecutter.default_cluster }}"  # {{ cookiecutter.package_name | upper }}_CLUSTER

# The embedded cluster (docs/design.md: "The embedded cluster").
LOCAL_DEFAULTS = {
    "n_workers": "2",  # {{ cookiecutter.package_name | upper }}_LOCAL_N_WORKERS
    "threads_per_worker": "1",  # {{ cookiecutter.package_name | upper }}_LOCAL_THREADS_PER_WORKER
    "processes": "true",  # {{ cookiecutter.package_name | upper }}_LOCAL_PROCESSES (true or false)
}

# Coiled clusters. Empty means "Coiled's own default".
COILED_DEFAULTS = {
    "workspace": {{ cookiecutter.coiled_workspace | literal }},  # {{ cookiecutter.package_name | upper }}_COILED_WORKSPACE
    "region": {{ cookiecutter.coiled_region | literal }},  # {{ cookiecutter.package_name | upper }}_COILED_REGION
    "n_workers": {{ cookiecutter.coiled_n_workers | literal }},  # {{ cookiecutter.package_name | upper }}_COILED_N_WORKERS
    "worker_cpu": {{ cookiecutter.coiled_worker_cpu | literal }},  # {{ cookiecutter.package_name | upper }}_COILED_WORKER_CPU
    "worker_memory": {{ cookiecutter.coiled_worker_memory | literal }},  # {{ cookiecutter.package_name | upper }}_COILED_WORKER_MEMORY
    "idle_timeout": {{ cookiecutter.coiled_idle_timeout | literal }},  # {{ cookiecutter.package_name | upper }}_COILED_IDLE_TIMEOUT
    "spot_policy": {{ cookiecutter.coiled_spot_policy | literal }},  # {{ cookiecutter.package_name | upper }}_COILED_SPOT_POLICY
    # A fixed name reuses a running cluster of that name (and still shuts it down at the end).
    "name": "",  # {{ cookiecutter.package_name | upper }}_COILED_NAME (empty: a fresh name per run)
    # Backstop for a client that vanished without closing (docs/design.md: "Closing clusters").
    "no_client_timeout": "2 minutes",  # {{ cookiecutter.package_name | upper }}_COILED_NO_CLIENT_TIMEOUT
    # Keep the cluster running after a run, for the next one (README: "Warm clusters").
    "keep": "false",  # {{ cookiecutter.package_name | upper }}_COILED_KEEP (true or false; or run --keep)
}

# Clusters the project does not start (--cluster tcp://host:8786, or --cluster gateway).
# How long to wait for a scheduler address (or a gateway) to answer before giving up.
CONNECT_TIMEOUT_SECONDS = "5"  # {{ cookiecutter.package_name | upper }}_CONNECT_TIMEOUT_SECONDS
# dask-gateway (the gateway extra): each run asks the gateway for a cluster and shuts it down at the end.
GATEWAY_DEFAULTS = {
    "address": "",  # {{ cookiecutter.package_name | upper }}_GATEWAY_ADDRESS (empty: dask config gateway.address)
    "n_workers": "2",  # {{ cookiecutter.package_name | upper }}_GATEWAY_N_WORKERS
}

# Retries of tasks that compute on a cluster (docs/design.md: "Retries").
TASK_RETRIES = 2
RETRY_DELAY_SECONDS = "5"  # {{ cookiecutter.package_name | upper }}_RETRY_DELAY_SECONDS

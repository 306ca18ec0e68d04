"""Prefect 1 flows that run on an embedded local Dask cluster or on Coiled."""

ENV_PREFIX = "{{ cookiecutter.package_name | upper }}_"
"""Prefix of every environment variable this project reads."""

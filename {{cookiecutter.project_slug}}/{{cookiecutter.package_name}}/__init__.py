"""Prefect 1 flows that compute on an embedded local Dask cluster or on Coiled.

``flows/`` holds the flows, one module each: that folder is yours. ``settings.py`` holds
the defaults baked from the template's answers. ``plumbing/`` starts, checks and closes
clusters and runs flows; you do not need to edit it.
"""

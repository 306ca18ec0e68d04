"""``make bench``: the generated flows against the same computation in plain Dask.

The default project is baked, and every figure comes from its own code: the flows as
users run them, and a plain-Dask baseline built from the same pure functions
(``load_timeseries``, ``summary_graph``, ``batches_of``, ``inc``/``double``/``add``)
on a cluster from the same ``cluster_spec``. Each measurement runs in a fresh child
process so peak memory is that of one run's process tree. Nothing here asserts a
time: the figures are printed, written to JSON and drawn, never judged.
"""

"""Your flows: every module in this folder that sets ``FLOW = declare(...)`` is one.

Adding a flow is adding a module here; the command line, ``prefect run -p``, the
diagrams, the Makefile, the Coiled workflow and the generic tests find it by itself.
The README's "Write your own flow" walks through one. Modules without ``FLOW`` (such
as ``timeseries_window.py``) are helpers of the flows that import them.
"""

"""Entry point for ``python -m {{ cookiecutter.package_name }}``."""

import sys

from {{ cookiecutter.package_name }}.cli import main

sys.exit(main())

"""Everything behind the entry points, one sub-package per layer: data, then training, then app."""

from pathlib import Path

# The folder of the clone: data/, runs/ and model_params.pkl are found from here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

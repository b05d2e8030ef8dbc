"""Saving a trained model: weights with their metadata, and the per-epoch history beside them."""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from digits.training.trainer import DataStory, EpochRecord
from model_loader import atomic_write_bytes, save_params

# Where a model came from, as its files record it.
FROM_TRAIN_PY, FROM_TRAIN_PAGE = "train.py", "Train page"


def history_path(model_path: Path) -> Path:
    """Where the per-epoch history of a model file lives: beside it, same stem, .json."""
    return model_path.with_name(model_path.stem + "_history.json")


def save_model(
    params: dict,
    history: list[EpochRecord],
    config: dict,
    output: Path,
    source: str,
    story: DataStory | None = None,
    **metadata,
) -> Path:
    """Write exported `params` with metadata to `output` and the history beside it; its path.

    `source` is FROM_TRAIN_PY or FROM_TRAIN_PAGE; `story` what it learnt from (None: fine-tuned).
    """
    about = {"source": source, "data": None if story is None else asdict(story)}
    params = {
        **params,
        **metadata,
        **about,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "numpy_version": np.__version__,
    }
    save_params(params, output)
    history_file = history_path(output)
    history_json = {"config": config, **about, "epochs": [asdict(r) for r in history]}
    atomic_write_bytes(history_file, json.dumps(history_json, indent=1).encode())
    return history_file

"""Saving a trained model: weights with their metadata, and the per-epoch history beside them."""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from digits.training.trainer import EpochRecord
from model_loader import atomic_write_bytes, save_params


def history_path(model_path: Path) -> Path:
    """Where the per-epoch history of a model file lives: beside it, same stem, .json."""
    return model_path.with_name(model_path.stem + "_history.json")


def save_model(
    params: dict, history: list[EpochRecord], config: dict, output: Path, **metadata
) -> Path:
    """Write exported `params` with metadata to `output` and the history beside it; its path."""
    params = {
        **params,
        **metadata,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "numpy_version": np.__version__,
    }
    save_params(params, output)
    history_file = history_path(output)
    history_json = {"config": config, "epochs": [asdict(r) for r in history]}
    atomic_write_bytes(history_file, json.dumps(history_json, indent=1).encode())
    return history_file

"""Epoch time of the NumPy trainer against the arithmetic floor and the same MLP in PyTorch.

Prints, from one run on this machine: the SGEMM rate (large square and at the training
shapes), the floor it implies for one epoch (27.3 GFLOP over 60,000 images), the median epoch
time of the project's trainer plain and augmented, PyTorch's median epoch time for the same
784-128-64-10 network and recipe (skipped with a message when torch is not installed), the
ratios between them. With --full it also times the default `python train.py` end to end and
reports its peak memory (RSS).

    python bench/bench_train.py [--epochs 3] [--rounds 3] [--threads 1] [--full]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from threadpoolctl import threadpool_limits

from mnist import N_CLASSES, N_PIXELS, load_mnist
from trainer import TrainConfig, fit

SIZES = (N_PIXELS, 128, 64, N_CLASSES)


def epoch_flops(n: int, sizes=SIZES) -> float:
    """FLOPs of one epoch: forward, weight gradients, and input gradients past layer 1."""
    per_layer = [2 * a * b for a, b in itertools.pairwise(sizes)]
    return n * (2 * sum(per_layer) + sum(per_layer[1:]))


def sgemm_rate(m: int, k: int, n: int, reps: int = 200) -> float:
    """Median float32 matrix-product rate in GFLOP/s for (m, k) @ (k, n)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    times = []
    for i in range(reps + 10):
        t = time.perf_counter()
        np.matmul(a, b, out=out)
        if i >= 10:
            times.append(time.perf_counter() - t)
    return 2 * m * k * n / float(np.median(times)) / 1e9


def training_shapes_rate(batch: int) -> float:
    """FLOP-weighted SGEMM rate over the products one training step performs."""
    shapes = []
    for i, (a, b) in enumerate(itertools.pairwise(SIZES)):
        shapes += [(batch, a, b), (a, batch, b)] + ([(batch, b, a)] if i > 0 else [])
    flops = [2 * m * k * n for m, k, n in shapes]
    seconds = [f / (sgemm_rate(*s) * 1e9) for f, s in zip(flops, shapes, strict=True)]
    return sum(flops) / sum(seconds) / 1e9


def numpy_epochs(images, labels, config: TrainConfig) -> list[float]:
    """Seconds per epoch of the project's trainer; the first epoch is dropped as warm-up."""
    _, history = fit(config, images, labels)
    return [r.seconds for r in history[1:]]


def torch_epochs(images, labels, config: TrainConfig) -> list[float] | None:
    """Seconds per epoch of the same network and recipe in PyTorch, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.blas_threads)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(SIZES)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=config.weight_decay,
    )
    # PyTorch gets its most favourable input: the whole set pre-converted to float32 once.
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255)
    y = torch.from_numpy(labels.astype(np.int64))
    steps = -(-len(x) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.lr,
        total_steps=config.epochs * steps,
        pct_start=config.warmup_epochs / config.epochs,
        anneal_strategy="cos",
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(config.epochs):
        t = time.perf_counter()
        order = torch.randperm(len(x))
        for i in range(0, len(x), config.batch_size):
            idx = order[i : i + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            scheduler.step()
        times.append(time.perf_counter() - t)
    return times[1:]


# Runs train.py in this child and reports the child's own peak RSS (VmHWM) on its last stderr
# line. getrusage(RUSAGE_CHILDREN) would not do: Linux counts into it the parent's pages the
# child held between fork and exec, so a parent with PyTorch loaded reads ~700 MB.
PEAK_RSS_WRAPPER = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    print("peak_rss_kb", status.split()[0], file=sys.stderr)
"""


def time_default_training() -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of a default `python train.py`, and its result line."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.pkl"
        started = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_RSS_WRAPPER,
                str(ROOT / "train.py"),
                "--output",
                str(out),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - started
    peak_kb = int(proc.stderr.rsplit("peak_rss_kb", 1)[1].split()[0])
    last = [line for line in proc.stdout.splitlines() if "test accuracy" in line.lower()]
    return wall, peak_kb / 1024, (last[-1] if last else proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (first dropped)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every run")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both trainers")
    parser.add_argument("--full", action="store_true", help="also time the default train.py")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args()

    data = load_mnist()
    images, labels = data.train_images, data.train_labels
    base = TrainConfig()
    plain = TrainConfig(epochs=args.epochs, augment=False, blas_threads=args.threads)
    augmented = TrainConfig(epochs=args.epochs, augment=True, blas_threads=args.threads)

    # The machine is shared and noisy, so every measurement runs once per round, interleaved:
    # a busy spell then slows all of them alike, and the medians and ratios stay comparable.
    peak, shapes, plain_t, aug_t, torch_t = [], [], [], [], []
    for _ in range(args.rounds):
        with threadpool_limits(args.threads, "blas"):
            peak.append(sgemm_rate(2048, 2048, 2048, reps=5))
            shapes.append(training_shapes_rate(base.batch_size))
        plain_t += numpy_epochs(images, labels, plain)
        aug_t += numpy_epochs(images, labels, augmented)
        torch_t += torch_epochs(images, labels, plain) or []
    peak_rate, shape_rate = float(np.median(peak)), float(np.median(shapes))
    flops = epoch_flops(len(images))
    floor = flops / (peak_rate * 1e9)
    shape_floor = flops / (shape_rate * 1e9)
    plain_s, aug_s = float(np.median(plain_t)), float(np.median(aug_t))
    torch_s = float(np.median(torch_t)) if torch_t else None

    figures = {
        "threads": args.threads,
        "batch_size": base.batch_size,
        "epochs_timed_each": len(plain_t),
        "epoch_gflop": flops / 1e9,
        "sgemm_gflops_peak": peak_rate,
        "sgemm_gflops_training_shapes": shape_rate,
        "floor_s_peak": floor,
        "floor_s_training_shapes": shape_floor,
        "numpy_plain_epoch_s": plain_s,
        "numpy_augmented_epoch_s": aug_s,
        "torch_epoch_s": torch_s,
        "plain_over_floor_peak": plain_s / floor,
        "plain_over_floor_training_shapes": plain_s / shape_floor,
        "augmented_over_plain": aug_s / plain_s,
        "numpy_over_torch": plain_s / torch_s if torch_s else None,
    }
    if args.full:
        wall, peak_mb, last = time_default_training()
        figures.update(default_train_wall_s=wall, default_train_peak_rss_mb=peak_mb)
        figures["default_train_result"] = last

    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"machine: {os.cpu_count()} cores, BLAS threads {args.threads}, batch {base.batch_size}, "
        f"{args.rounds} interleaved rounds, medians of {len(plain_t)} epochs each"
    )
    print(f"one epoch = {flops / 1e9:.1f} GFLOP over {len(images)} images")
    print(
        f"SGEMM rate: {peak_rate:.0f} GFLOP/s (2048^3), {shape_rate:.0f} GFLOP/s (training shapes)"
    )
    print(f"arithmetic floor: {floor:.3f} s (peak rate), {shape_floor:.3f} s (training shapes)")
    print(
        f"numpy plain epoch:     {plain_s:.3f} s  = {plain_s / floor:.2f}x floor (peak), "
        f"{plain_s / shape_floor:.2f}x floor (training shapes)"
    )
    print(f"numpy augmented epoch: {aug_s:.3f} s  = {aug_s / plain_s:.2f}x plain")
    if torch_s is None:
        print("pytorch: not installed, skipped (pip install torch==2.13.0 to compare)")
    else:
        print(f"pytorch epoch:         {torch_s:.3f} s  -> numpy/pytorch = {plain_s / torch_s:.2f}")
    if args.full:
        print(f"default `python train.py`: {wall:.1f} s wall, peak RSS {peak_mb:.0f} MB; {last}")


if __name__ == "__main__":
    main()

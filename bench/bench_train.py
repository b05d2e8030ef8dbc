"""Epoch time of the NumPy trainer against the arithmetic floor and the same MLP in PyTorch.

Prints, from one run on this machine: the SGEMM rate (large square and at the training
shapes), the floor it implies for one epoch (27.3 GFLOP over 60,000 images), the median epoch
time of the project's trainer plain and augmented, PyTorch's median epoch time for the same
784-128-64-10 network and recipe (skipped with a message when torch is not installed), the
ratios between them. Every figure is a median over interleaved rounds, and every ratio is also
given per round, so its spread shows how noisy the shared machine was.

With --breakdown it also times, per step, what a batch-128 step cannot go below in NumPy: the
products alone, run back to back as a step runs them, a minimal hand-written step (products,
bias, ReLU, softmax cross-entropy; no optimizer) and that step plus the project's SGD.

With --full it also runs the default `python train.py` --runs times, each beside the one
before the training-speed work (commit PREVIOUS, from a git worktree), and gives their median
wall times, their ratio and the peak memory, the recipe's arithmetic floor, where one default
run's time goes (train_breakdown.py), and the time to a test accuracy on plain MNIST against
PyTorch (time_to_accuracy.py).

    python bench/bench_train.py [--epochs 3] [--rounds 3] [--threads 1] [--breakdown]
                                [--full [--runs 3]] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
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

from digits.app.training_runner import PAGE_EPOCHS
from digits.data.mnist import N_CLASSES, N_PIXELS, load_mnist, to_input
from digits.training.trainer import (
    Stepper,
    TrainConfig,
    fit,
    new_network,
    steps_per_epoch,
    training_data,
)
from model_loader import load_params
from optimizers import SGD

sys.path.insert(0, str(ROOT / "bench"))
from time_to_accuracy import numpy_curve, plain_recipe, time_to, torch_curve, torch_recipe
from train_breakdown import default_run_breakdown

# The last commit before the training-speed work: its `python train.py` (program and recipe)
# runs beside today's, from a git worktree, so the speed-up is a ratio measured in one run.
PREVIOUS = "2398496"
TARGETS = (0.98, 0.985, 0.99)

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


def hand_epoch_seconds(x_all, labels, batch: int, mode: str) -> float:
    """Seconds of one epoch of batch steps written by hand with every array preallocated.

    mode "products": only the step's eight matrix products, in the trainer's layout;
    "step": plus bias, ReLU and softmax cross-entropy (the least a step must do besides the
    update); "step+sgd": plus the project's SGD step over the same flat parameter buffer.
    x_all is float32 (N, 784), converted once: the most favourable input.
    """
    rng = np.random.default_rng(0)
    sizes = list(itertools.pairwise(SIZES))
    params = np.concatenate([(rng.standard_normal(a * b) * np.sqrt(2 / a)) for a, b in sizes])
    params = np.concatenate([params, np.zeros(sum(b for _, b in sizes))]).astype(np.float32)
    grads = np.zeros_like(params)
    Ws, gWs, bs, gbs, offset = [], [], [], [], 0
    for a, b in sizes:
        Ws.append(params[offset : offset + a * b].reshape(a, b))
        gWs.append(grads[offset : offset + a * b].reshape(a, b))
        offset += a * b
    n_weights = offset
    for _, b in sizes:
        bs.append(params[offset : offset + b])
        gbs.append(grads[offset : offset + b])
        offset += b
    sgd = SGD(params, grads, momentum=0.9, nesterov=True, weight_decay=2e-4, n_decayed=n_weights)
    hs = [None] + [np.empty((batch, b), np.float32) for _, b in sizes]
    ds = [np.empty((batch, a), np.float32) for a, _ in sizes]
    ones = np.ones(batch, np.float32)
    rows = np.arange(batch)
    started = time.perf_counter()
    for start in range(0, len(x_all) - batch + 1, batch):
        hs[0], y = x_all[start : start + batch], labels[start : start + batch]
        for k, W in enumerate(Ws):
            np.matmul(hs[k], W, out=hs[k + 1])
            if mode != "products":
                hs[k + 1] += bs[k]
                if k < len(Ws) - 1:
                    np.maximum(hs[k + 1], 0, out=hs[k + 1])
        d = hs[-1]
        if mode != "products":
            d -= d.max(axis=1, keepdims=True)
            np.exp(d, out=d)
            d /= d.sum(axis=1, keepdims=True)
            d[rows, y] -= 1
            d *= np.float32(1 / batch)
        for k in reversed(range(len(Ws))):
            np.matmul(hs[k].T, d, out=gWs[k])
            if mode != "products":
                np.matmul(ones, d, out=gbs[k])
            if k > 0:
                d = np.matmul(d, Ws[k].T, out=ds[k])
                if mode != "products":
                    d *= hs[k] > 0
        if mode == "step+sgd":
            sgd.step(1e-3)
    return time.perf_counter() - started


def trainer_step_epoch_seconds(x_all, labels, batch: int) -> float:
    """Seconds of the trainer's own steps (trainer.Stepper: network, SGD, bookkeeping) over an
    epoch of the same pre-converted input as hand_epoch_seconds: its step, without its data path.
    """
    config = TrainConfig(augment=False, drawn=False, batch_size=batch)
    network = new_network(config, np.random.default_rng(0))
    stepper = Stepper(config, network, steps_per_epoch(len(x_all), batch))
    starts = range(0, len(x_all) - batch + 1, batch)
    batches = ((x_all[s : s + batch], labels[s : s + batch]) for s in starts)
    started = time.perf_counter()
    stepper.epoch(batches)
    return time.perf_counter() - started


def numpy_epochs(images, labels, config: TrainConfig) -> list[float]:
    """Seconds per epoch of the project's trainer; the first epoch is dropped as warm-up."""
    _, history = fit(config, images, labels)
    return [r.seconds for r in history[1:]]


def torch_epochs(images, labels, config: TrainConfig) -> list[float] | None:
    """Seconds per epoch of the same network and recipe in PyTorch, or None without torch."""
    recipe = torch_recipe(config, images, labels)
    if recipe is None:
        return None
    _, run_epoch = recipe
    return [run_epoch() for _ in range(config.epochs)][1:]


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


def same_weights(a: Path, b: Path) -> bool:
    """Whether two model files hold the same weights and biases, bit for bit."""
    first, second = load_params(a), load_params(b)
    return all(
        np.array_equal(x, y)
        for key in ("weights", "biases")
        for x, y in zip(first[key], second[key], strict=True)
    )


def time_training(root: Path) -> tuple[float, float, str, bool]:
    """Wall seconds and peak RSS (MB) of a default `python train.py` in `root`, its result line,
    and whether it wrote the weights committed there."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.pkl"
        started = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_RSS_WRAPPER,
                "train.py",
                "--output",
                str(out),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        )
        wall = time.perf_counter() - started
        reproduced = same_weights(out, root / "model_params.pkl")
    peak_kb = int(proc.stderr.rsplit("peak_rss_kb", 1)[1].split()[0])
    last = [line for line in proc.stdout.splitlines() if "test accuracy" in line.lower()]
    result = last[-1] if last else proc.stdout.strip().splitlines()[-1]
    return wall, peak_kb / 1024, result, reproduced


# Run in a tree's own code: the seconds of a training run as the Train page starts it with its
# defaults (argv[1] epochs of the default recipe: all images, drawn digits, augmentation).
PAGE_RUN_SNIPPET = """
import sys, time
from digits.data.mnist import load_mnist
from digits.training.trainer import TrainConfig, fit, training_data
config = TrainConfig(epochs=int(sys.argv[1]))
(x, y), (vx, vy), _ = training_data(load_mnist(), config)
started = time.perf_counter()
fit(config, x, y, vx, vy)
print(time.perf_counter() - started)
"""


def page_run_seconds(root: Path) -> float:
    """Seconds of the Train page's default run with the trainer in `root`."""
    proc = subprocess.run(
        [sys.executable, "-c", PAGE_RUN_SNIPPET, str(PAGE_EPOCHS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    return float(proc.stdout.split()[-1])


@contextlib.contextmanager
def checkout(revision: str):
    """A temporary git worktree of `revision` of this repository."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "previous"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(tree), revision], check=True,
                       capture_output=True)  # fmt: skip
        try:
            yield tree
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=True)


def full_figures(runs: int) -> dict:
    """Today's default train.py against the previous one, interleaved; its floor and breakdown."""
    walls: dict[str, list[float]] = {"default": [], "previous": []}
    page_runs: dict[str, list[float]] = {"default": [], "previous": []}
    peaks, results, reproduced = [], [], []
    with checkout(PREVIOUS) as previous:
        for _ in range(runs):
            for name, root in (("default", ROOT), ("previous", previous)):
                page_runs[name].append(page_run_seconds(root))
                wall, peak_mb, result, same = time_training(root)
                walls[name].append(wall)
                if name == "default":
                    peaks.append(peak_mb)
                    results.append(result)
                    reproduced.append(same)
    config = TrainConfig()
    n_images = len(training_data(load_mnist(), config)[0][0])
    flops = config.epochs * epoch_flops(n_images)
    with threadpool_limits(config.blas_threads, "blas"):
        rate = sgemm_rate(2048, 2048, 2048, reps=5)
    return {
        "default_walls_s": walls["default"],
        "previous_walls_s": walls["previous"],
        "default_over_previous": [
            a / b for a, b in zip(walls["default"], walls["previous"], strict=True)
        ],
        "page_run_s": page_runs,
        "default_peak_rss_mb": max(peaks),
        "default_results": results,
        "default_reproduces_committed_model": reproduced,
        "recipe_tflop": flops / 1e12,
        "recipe_floor_s": flops / (rate * 1e9),
        "breakdown": default_run_breakdown(),
    }


def accuracy_figures(targets=TARGETS) -> dict:
    """Time to each target test accuracy on plain MNIST, this trainer and PyTorch's."""
    data = load_mnist()
    config = plain_recipe(TrainConfig())
    curves = {"numpy": numpy_curve(config, data), "pytorch": torch_curve(config, data)}
    times = {
        name: {t: time_to(curve, t) for t in targets} if curve else None
        for name, curve in curves.items()
    }
    return {"curves": curves, "times": times, "epochs": config.epochs}


def median(values) -> float:
    return float(np.median(values))


def parse_args() -> argparse.Namespace:
    """The command-line options described in the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (first dropped)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every run")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both trainers")
    parser.add_argument("--breakdown", action="store_true", help="also time hand-written steps")
    parser.add_argument(
        "--full",
        action="store_true",
        help="also time the default train.py against the previous recipe, its breakdown, and "
        "the time to a test accuracy against PyTorch",
    )
    parser.add_argument("--runs", type=int, default=3, help="train.py runs of each, with --full")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    return parser.parse_args()


def measure_rounds(args, images, labels, hand_modes) -> list[dict[str, list[float]]]:
    """Every measurement once per round: per round, a list of figures under each key."""
    batch_size = TrainConfig().batch_size
    plain = TrainConfig(epochs=args.epochs, augment=False, blas_threads=args.threads)
    augmented = TrainConfig(epochs=args.epochs, augment=True, blas_threads=args.threads)
    x_all = to_input(images) if args.breakdown else None
    # The machine is shared and noisy, so every measurement runs once per round, interleaved:
    # a busy spell then slows all of them alike, and the medians and ratios stay comparable.
    keys = ["peak", "shapes", "plain", "augmented", "torch", "trainer step", *hand_modes]
    rounds = [{k: [] for k in keys} for _ in range(args.rounds)]
    for r in rounds:
        with threadpool_limits(args.threads, "blas"):
            r["peak"].append(sgemm_rate(2048, 2048, 2048, reps=5))
            r["shapes"].append(training_shapes_rate(batch_size))
            for mode in hand_modes:
                r[mode].append(hand_epoch_seconds(x_all, labels, batch_size, mode))
            if hand_modes:
                r["trainer step"].append(trainer_step_epoch_seconds(x_all, labels, batch_size))
        r["plain"] += numpy_epochs(images, labels, plain)
        r["augmented"] += numpy_epochs(images, labels, augmented)
        r["torch"] += torch_epochs(images, labels, plain) or []
    return rounds


def per_round_ratios(rounds, flops: float, with_torch: bool) -> dict[str, list[float]]:
    """The headline ratios within each round, against that round's own SGEMM rate."""
    # Their spread is the honest error bar on the medians over all rounds.
    return {
        "plain_over_floor_peak": [
            median(r["plain"]) * median(r["peak"]) * 1e9 / flops for r in rounds
        ],
        "plain_over_floor_training_shapes": [
            median(r["plain"]) * median(r["shapes"]) * 1e9 / flops for r in rounds
        ],
        "numpy_over_torch": [median(r["plain"]) / median(r["torch"]) for r in rounds]
        if with_torch
        else [],
    }


def summarize(args, rounds, flops: float, hand_modes) -> dict:
    """The figures, as printed by --json: medians over all rounds, ratios and per-round ratios."""
    every = {k: [v for r in rounds for v in r[k]] for k in rounds[0]}
    peak_rate, shape_rate = median(every["peak"]), median(every["shapes"])
    floor = flops / (peak_rate * 1e9)
    shape_floor = flops / (shape_rate * 1e9)
    plain_s, aug_s = median(every["plain"]), median(every["augmented"])
    torch_s = median(every["torch"]) if every["torch"] else None
    figures = {
        "threads": args.threads,
        "batch_size": TrainConfig().batch_size,
        "epochs_timed_each": len(every["plain"]),
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
        "per_round": per_round_ratios(rounds, flops, bool(torch_s)),
    }
    for mode in hand_modes:
        figures[f"hand_{mode}_epoch_s"] = median(every[mode])
    if hand_modes:
        figures["trainer_step_epoch_s"] = median(every["trainer step"])
        figures["per_round"]["trainer_step_over_hand"] = [
            median(r["trainer step"]) / median(r["step+sgd"]) for r in rounds
        ]
    return figures


def print_report(figures: dict, n_rounds: int, n_images: int, hand_modes) -> None:
    """Print the figures from `summarize` as the human-readable report."""
    f = figures
    batch, floor, shape_floor = f["batch_size"], f["floor_s_peak"], f["floor_s_training_shapes"]
    plain_s, aug_s, torch_s = (
        f["numpy_plain_epoch_s"],
        f["numpy_augmented_epoch_s"],
        f["torch_epoch_s"],
    )

    def spread(key: str) -> str:
        return "per round " + ", ".join(f"{v:.2f}" for v in f["per_round"][key])

    print(
        f"machine: {os.cpu_count()} cores, BLAS threads {f['threads']}, batch {batch}, "
        f"{n_rounds} interleaved rounds, medians of {f['epochs_timed_each']} epochs each"
    )
    steps = -(-n_images // batch)
    print(f"one epoch = {f['epoch_gflop']:.1f} GFLOP over {n_images} images ({steps} steps)")
    print(
        f"SGEMM rate: {f['sgemm_gflops_peak']:.0f} GFLOP/s (2048^3), "
        f"{f['sgemm_gflops_training_shapes']:.0f} GFLOP/s "
        "(training shapes: the step's 8 products, each timed alone, FLOP-weighted)"
    )
    print(f"arithmetic floor: {floor:.3f} s (peak rate), {shape_floor:.3f} s (training shapes)")
    print(f"numpy plain epoch:     {plain_s:.3f} s")
    print(
        f"  / floor (peak)            = {plain_s / floor:.2f}x  ({spread('plain_over_floor_peak')})"
    )
    print(
        f"  / floor (training shapes) = {plain_s / shape_floor:.2f}x  "
        f"({spread('plain_over_floor_training_shapes')})"
    )
    print(f"numpy augmented epoch: {aug_s:.3f} s  = {aug_s / plain_s:.2f}x plain")
    if torch_s is None:
        print("pytorch: not installed, skipped (pip install -r bench/requirements.txt)")
    else:
        print(
            f"pytorch epoch:         {torch_s:.3f} s  -> numpy/pytorch = {plain_s / torch_s:.2f}"
            f"  ({spread('numpy_over_torch')})"
        )
    for mode in hand_modes:
        hand = f[f"hand_{mode}_epoch_s"]
        print(
            f"hand-written {mode:9s} epoch: {hand:.3f} s = {hand / shape_floor:.2f}x floor "
            f"(training shapes), {hand / floor:.2f}x floor (peak); trainer = {plain_s / hand:.2f}x"
        )
    if hand_modes:
        step_s, hand = f["trainer_step_epoch_s"], f["hand_step+sgd_epoch_s"]
        print(
            f"the trainer's step over the same input: {step_s:.3f} s = {step_s / hand:.2f}x the "
            f"hand-written step+sgd  ({spread('trainer_step_over_hand')}; target <= 1.1)"
        )


def print_full(f: dict) -> None:
    """The default train.py's wall time against the previous recipe's, its floor, its shares."""
    walls, previous = f["default_walls_s"], f["previous_walls_s"]
    print(
        f"default `python train.py`: median {median(walls):.1f} s wall "
        f"({', '.join(f'{w:.1f}' for w in walls)}); peak RSS {f['default_peak_rss_mb']:.0f} MB"
    )
    print(f"  {f['default_results'][-1]}")
    same = f["default_reproduces_committed_model"]
    print(f"  wrote the committed model_params.pkl bit for bit: {sum(same)} of {len(same)} runs")
    print(
        f"previous train.py (commit {PREVIOUS}): median {median(previous):.1f} s "
        f"-> default/previous = {median(walls) / median(previous):.2f} "
        f"(per run {', '.join(f'{r:.2f}' for r in f['default_over_previous'])})"
    )
    today, before = median(f["page_run_s"]["default"]), median(f["page_run_s"]["previous"])
    print(
        f"the Train page's default run ({PAGE_EPOCHS} epochs): median {today:.1f} s, "
        f"previously {before:.1f} s -> {today / before:.2f}"
    )
    print(
        f"recipe: {f['recipe_tflop']:.2f} TFLOP of products, floor {f['recipe_floor_s']:.1f} s "
        f"at the peak SGEMM rate -> wall/floor = {median(walls) / f['recipe_floor_s']:.2f}x"
    )
    b = f["breakdown"]
    print(f"where one default run's {b['wall_s']:.1f} s go:")
    for phase, share in b["shares"].items():
        print(f"  {phase:22s} {share:6.1%}  ({b['seconds'].get(phase, 0.0):.1f} s)")
    second = b["seconds"].get("second core: augmentation", 0.0)
    first = b["seconds"].get("first core: its share of augmentation", 0.0)
    print(
        f"  (the second core augmented for {second:.1f} s, hidden behind the steps; the first "
        f"core augmented the tails of chunks for {first:.1f} s, within 'batches')"
    )


def print_accuracy(f: dict) -> None:
    """Time to each target test accuracy, and the ratio at the highest both reach."""
    print(f"time to a test accuracy on plain MNIST ({f['epochs']} epochs, no augmentation):")
    numpy_times, torch_times = f["times"]["numpy"], f["times"]["pytorch"]
    for target, seconds in numpy_times.items():
        mine = "not reached" if seconds is None else f"{seconds:.1f} s"
        line = f"  {target:.1%}: numpy {mine}"
        if torch_times is not None:
            theirs = torch_times[target]
            line += ", pytorch " + ("not reached" if theirs is None else f"{theirs:.1f} s")
            if seconds is not None and theirs is not None:
                line += f" -> numpy/pytorch = {seconds / theirs:.2f}"
        print(line)
    best = {name: max(a for _, a in curve) for name, curve in f["curves"].items() if curve}
    print("  best test accuracy: " + ", ".join(f"{n} {a:.2%}" for n, a in best.items()))
    if torch_times is None:
        print("  pytorch: not installed, skipped (pip install -r bench/requirements.txt)")


def main() -> None:
    args = parse_args()
    data = load_mnist()
    images, labels = data.train_images, data.train_labels
    flops = epoch_flops(len(images))
    hand_modes = ("products", "step", "step+sgd") if args.breakdown else ()
    rounds = measure_rounds(args, images, labels, hand_modes)
    figures = summarize(args, rounds, flops, hand_modes)
    if args.full:
        figures["full"] = full_figures(args.runs)
        figures["accuracy"] = accuracy_figures()
    if args.json:
        print(json.dumps(figures))
        return
    print_report(figures, args.rounds, len(images), hand_modes)
    if args.full:
        print_full(figures["full"])
        print_accuracy(figures["accuracy"])


if __name__ == "__main__":
    main()

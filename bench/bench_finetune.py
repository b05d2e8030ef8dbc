"""Does fine-tuning teach the network a hand MNIST rarely shows, without it forgetting MNIST?

It draws `--samples` digits in digits/data/styled_digits.py's hand (a slashed 0, a crossed 7, a 1
with flag and foot) on the app's canvas, reads them with the app's preprocessing, stores them
through user_store as the app's Right / Wrong buttons do, and fine-tunes the model on them with
finetune.py's defaults. It prints the accuracy before and after on MNIST's 10,000 test images
and on `--heldout` more drawings of that hand, drawn with another seed and never trained on,
per digit, plus finetune's own report on the held-out part of the stored samples.

    python bench/bench_finetune.py [--samples 36] [--heldout 600] [--seed 0] [--model PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from digits.app.user_store import UserStore, original_png
from digits.data.mnist import load_mnist, to_uint8
from digits.data.styled_digits import DIGITS, styled_samples
from digits.training.evaluation import per_digit
from digits.training.finetune import FinetuneConfig, finetune
from model_loader import MODEL_PATH, load_params
from network import Classifier


def store_samples(store: UserStore, classifier: Classifier, n: int, seed: int) -> None:
    """Draw n styled digits and store each as the app does: drawing, input, label, prediction."""
    drawings, inputs, labels = styled_samples(n, seed)
    predictions = classifier.predict_proba(inputs.reshape(n, -1)).argmax(axis=1)
    for drawing, image, label, predicted in zip(drawings, inputs, labels, predictions, strict=True):
        store.add(int(label), image, original_png(drawing), prediction=int(predicted))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=36, help="styled digits the user teaches")
    p.add_argument("--heldout", type=int, default=600, help="styled digits to score on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", type=Path, default=MODEL_PATH)
    args = p.parse_args(argv)

    mnist = load_mnist()
    params = load_params(args.model)
    before = Classifier(params)
    with tempfile.TemporaryDirectory() as folder:
        store = UserStore(Path(folder) / "samples.sqlite")
        store_samples(store, before, args.samples, args.seed)
        images, labels = store.arrays()
    _, heldout, heldout_labels = styled_samples(args.heldout, args.seed + 1)
    heldout = to_uint8(heldout)

    config = FinetuneConfig(seed=args.seed)
    started = time.perf_counter()
    network, _, report = finetune(params, images, labels, mnist, config)
    seconds = time.perf_counter() - started

    print(
        f"fine-tuned {args.model.name} on {len(labels)} styled samples "
        f"({report.n_train} trained on, {report.n_heldout} held out by finetune) in "
        f"{seconds:.1f}s: {config.epochs} epochs, lr {config.lr}, user share "
        f"{config.user_share}, MNIST replay {config.replay or 'all'}"
    )
    rows = [("before", before.predict_proba, report.mnist_before),
            ("after", network.predict_proba, report.mnist_after)]  # fmt: skip
    digits = "  ".join(f"{'styled ' + str(d):>9}" for d in DIGITS)
    print(f"{'':>6}  {'MNIST test':>10}  {'styled, all':>11}  {digits}")
    for name, predict_proba, on_mnist in rows:
        scores = per_digit(predict_proba, heldout, heldout_labels, DIGITS)
        cells = "  ".join(f"{scores[d]:>9.1%}" for d in DIGITS)
        print(f"{name:>6}  {on_mnist:>10.2%}  {scores[-1]:>11.1%}  {cells}")
    print(f"styled = {len(heldout_labels)} drawings with seed {args.seed + 1}, never trained on")
    change = 100 * (report.mnist_after - report.mnist_before)
    print(f"MNIST test accuracy change: {change:+.2f} points")
    for line in report.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`tf-adapters` entry point."""

import argparse
import logging
import sys


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tf-adapters",
        description="Adapter fine-tuning for keras-hub language models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="A small end-to-end run: add LoRA to a GPT-2-shaped model, "
        "train it, save and reload the adapter, merge it.",
    )
    demo.add_argument("--output", default="runs/demo", help="Output folder.")
    demo.add_argument("--epochs", type=int, default=6)
    demo.add_argument("--rank", type=int, default=8)
    demo.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "demo":
        from tf_adapters.cli.demo import run_demo

        report = run_demo(
            output=args.output,
            epochs=args.epochs,
            rank=args.rank,
            seed=args.seed,
        )
        return 0 if report["ok"] else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())

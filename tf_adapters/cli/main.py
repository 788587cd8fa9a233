"""`tf-adapters` entry point: a thin shell over the library.

Every `finetune` flag is a field of `FinetuneConfig`; `--config FILE` (YAML or
JSON) sets any of them, and flags given on the command line win.
"""

import argparse
import dataclasses
import logging
import sys

from tf_adapters.training.finetune_config import FinetuneConfig


def _add_config_flags(parser, cls):
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        meta = dict(field.metadata)
        help_text = meta.pop("help", "")
        kwargs = {"default": argparse.SUPPRESS, "dest": field.name}
        if field.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = field.type if field.type in (int, float) else str
            kwargs.update(meta)
        default = field.default
        if isinstance(default, str) and "\n" in default:
            default = repr(default)
        parser.add_argument(
            flag, help=f"{help_text} (default: {default})", **kwargs
        )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tf-adapters",
        description="Adapter fine-tuning for keras-hub language models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    finetune = sub.add_parser(
        "finetune",
        help="The main job: base model → data → adapter fine-tuning → "
        "evaluation → adapter checkpoint and SavedModel. With no options it "
        "runs on the embedded default model and the built-in sentiment task.",
        description="Fine-tune an adapter on a classification task and "
        "compare it with the zero-shot base model.",
    )
    finetune.add_argument(
        "--config",
        help="YAML or JSON file of options (any flag below); flags given on "
        "the command line override it.",
    )
    _add_config_flags(finetune, FinetuneConfig)

    demo = sub.add_parser(
        "demo",
        help="A one-minute check of the adapter life cycle on a tiny "
        "random-weight GPT-2 (add, train, save, reload, merge).",
    )
    demo.add_argument("--output", default="runs/demo", help="Output folder.")
    demo.add_argument("--epochs", type=int, default=6)
    demo.add_argument("--rank", type=int, default=8)
    demo.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    args = vars(build_parser().parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = args.pop("command")
    try:
        if command == "finetune":
            from tf_adapters.training.finetune import run_finetune

            options = {}
            config_path = args.pop("config", None)
            if config_path:
                options.update(FinetuneConfig.from_file(config_path))
            options.update(args)
            run_finetune(
                FinetuneConfig.from_dict(options, config_path or "flags")
            )
            return 0
        from tf_adapters.cli.demo import run_demo

        return 0 if run_demo(**args)["ok"] else 1
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        print(f"tf-adapters {command}: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        print(f"tf-adapters {command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

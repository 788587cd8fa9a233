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

    export = sub.add_parser(
        "export",
        help="Export a base model (plus an adapter checkpoint) as a "
        "versioned SavedModel for TF Serving.",
    )
    export.add_argument(
        "--model", default="embedded", help="Base model (as for finetune)."
    )
    export.add_argument(
        "--adapter",
        nargs="+",
        help="Adapter checkpoint folder(s) written by save_adapter. With "
        "several, one SavedModel serves them all: every signature takes an "
        "`adapter` name per example.",
    )
    export.add_argument("--name", default="model", help="SavedModel name.")
    export.add_argument("--export-dir", default="saved_models")
    export.add_argument(
        "--version", type=int, help="Version (default: the next free one)."
    )
    export.add_argument(
        "--merge",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Merge a LoRA/IA3 adapter into the exported weights.",
    )
    export.add_argument(
        "--text",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Add the string signature (needs TensorFlow Text ops in the "
        "server); --no-text keeps stock TF ops only.",
    )
    export.add_argument(
        "--max-prompt-length",
        type=int,
        help="Longest prompt in tokens for the string signature.",
    )

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
        if command == "export":
            return _export(args)
        from tf_adapters.cli.demo import run_demo

        return 0 if run_demo(**args)["ok"] else 1
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        print(f"tf-adapters {command}: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        print(f"tf-adapters {command}: error: {e}", file=sys.stderr)
        return 2


def _export(args):
    import tf_adapters as tfa
    from tf_adapters.export.saved_model import export_saved_model
    from tf_adapters.models.loading import load_base

    model = load_base(args["model"])
    for adapter in args.get("adapter") or []:
        tfa.load_adapter(model, adapter)
    names = tfa.list_adapters(model)
    path = export_saved_model(
        model,
        args["export_dir"],
        args["name"],
        version=args.get("version"),
        merge=args["merge"],
        max_prompt_length=args.get("max_prompt_length"),
        text=args["text"],
        adapters=names if len(names) > 1 else None,
    )
    print(f"SavedModel written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`tf-adapters` entry point: a thin shell over the library.

Every `finetune` flag is a field of `FinetuneConfig`; `--config FILE` (YAML or
JSON) sets any of them, and flags given on the command line win.

Parsing loads no TensorFlow (`--help` and bad flags answer at once); the
library loads once the arguments are parsed, quietly unless `--verbose`.
"""

import argparse
import contextlib
import dataclasses
import importlib
import logging
import sys

from tf_adapters.cli import quiet
from tf_adapters.pipeline import COMPARE_METHODS
from tf_adapters.pipeline import DEFAULT_METHODS
from tf_adapters.pipeline import FULL_LEARNING_RATE
from tf_adapters.pipeline import GRID
from tf_adapters.pipeline import SWEEP_METHODS
from tf_adapters.pipeline import FinetuneConfig
from tf_adapters.pipeline import SaveError
from tf_adapters.pipeline import base_type
from tf_adapters.pipeline import xla_cache

# Exit statuses besides 0 (done) and 2 (bad options or input), from
# sysexits.h; `finetune --help` lists them.
EXIT_SAVE_FAILED = 74  # EX_IOERR: a save failed, the disk is full
EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: SIGTERM / SIGINT; --resume continues
EXIT_STATUS_HELP = (
    "exit status: 0 done; 2 bad options or input, or --output in use by "
    "another run (message on stderr); "
    f"{EXIT_SAVE_FAILED} a save failed because the disk is full (what was "
    "saved before is intact); "
    f"{EXIT_INTERRUPTED} SIGTERM or SIGINT stopped training after the running "
    "step and the training state is saved: run the same command with "
    "--resume to continue (a second signal stops at once)."
)

VERBOSE_HELP = (
    "Show everything TensorFlow, XLA and Keras print (start-up and "
    "compilation lines, harmless warnings); by default the command sets "
    "TF_CPP_MIN_LOG_LEVEL=3 and hides them. Before or after the command."
)

ADAPTER_HELP = (
    "Adapter: a folder from finetune / save_adapter, a PEFT adapter folder "
    "or a keras-hub .lora.h5 file."
)


def _add_config_flags(parser, cls, skip=()):
    parser.add_argument(
        "--config",
        help="YAML or JSON file of options (any flag below); flags given on "
        "the command line override it.",
    )
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        meta = dict(field.metadata)
        flag = meta.pop("flag", "--" + field.name.replace("_", "-"))
        help_text = meta.pop("help", "")
        kwargs = {"default": argparse.SUPPRESS, "dest": field.name}
        kind = base_type(field.type)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind is dict:
            kwargs.update(action="append", type=_key_value, **meta)
        else:
            kwargs["type"] = kind if kind in (int, float) else str
            kwargs.update(meta)
        default = field.default
        if isinstance(default, str) and "\n" in default:
            default = repr(default)
        if default is not None or "Unset:" not in help_text:
            help_text = f"{help_text} (default: {default})"
        parser.add_argument(flag, help=help_text, **kwargs)


def _key_value(text):
    """`KEY=VALUE` → `(KEY, VALUE read as YAML)`; `1e-1` reads as a number
    (YAML 1.1 wants `1.0e-1`)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (e.g. dropout=0.1). Received: {text!r}."
        )
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value is not valid YAML ({e})."
        ) from None
    if isinstance(parsed, str):
        try:
            parsed = float(parsed)
        except ValueError:
            pass
    return key.strip(), parsed


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tf-adapters",
        description="Adapter fine-tuning for keras-hub language models.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help=VERBOSE_HELP
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_finetune,
        _add_evaluate,
        _add_compare,
        _add_sweep,
        _add_generate,
        _add_export,
        _add_convert,
        _add_demo,
    ):
        add(sub)
    for command in sub.choices.values():
        # Also after the command; unset there, it keeps the value before.
        command.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help=VERBOSE_HELP,
        )
    return parser


def _add_finetune(sub):
    """`tf-adapters finetune`: the main job."""
    finetune = sub.add_parser(
        "finetune",
        help="The main job: base model → data → adapter fine-tuning → "
        "evaluation → adapter checkpoint and SavedModel. With no options it "
        "runs on the embedded default model and the built-in sentiment task.",
        description="Fine-tune an adapter on a classification task and "
        "compare it with the zero-shot base model.",
        epilog=EXIT_STATUS_HELP,
    )
    _add_config_flags(finetune, FinetuneConfig)


def _add_evaluate(sub):
    """`tf-adapters evaluate`: a saved adapter or weights on a test split."""
    evaluate = sub.add_parser(
        "evaluate",
        help="Evaluate a base model plus a saved adapter (or saved weights) "
        "on a task's test split.",
        description="Evaluate on the test split that `finetune` holds out "
        "for the same data, test size and seed. With --adapter or --weights "
        "of a finetune run, the run's task, data, template, sequence length "
        "and sizes (its report.json) are the defaults; flags override them.",
    )
    evaluate.add_argument("--adapter", help=ADAPTER_HELP)
    evaluate.add_argument(
        "--weights",
        help="`weights` folder of a full/linear_probe run, or of a linear "
        "head trained with an adapter.",
    )
    # A saved adapter carries its own options; the run's report.json beside
    # it gives the scoring options (`evaluate.run_options`).
    _add_config_flags(evaluate, FinetuneConfig, skip=("adapter",))


def _add_compare(sub):
    """`tf-adapters compare`: every method on one task."""
    compare = sub.add_parser(
        "compare",
        help="Compare the frozen base, a linear probe, full fine-tuning and "
        "every adapter method on one task: a Markdown/JSON table and a PNG.",
        description="Runs `finetune` once per method with the same base, "
        "data, seed, steps and batch. --l2sp λ adds L2-SP runs of full "
        "fine-tuning and LoRA; --share-weights adds shared-weight runs of "
        "the LoRA and bottleneck adapters; --loraplus-lr-ratio adds a LoRA+ "
        "run of LoRA; --fuse DIR DIR... adds an AdapterFusion of those "
        "trained adapters.",
    )
    compare.add_argument(
        "--methods",
        nargs="+",
        default=list(DEFAULT_METHODS),
        choices=list(COMPARE_METHODS),
        help="Methods to compare (default: every method; the LoRA variants "
        f"{sorted(set(COMPARE_METHODS) - set(DEFAULT_METHODS))} run when "
        "named).",
    )
    compare.add_argument(
        "--full-learning-rate",
        type=float,
        default=FULL_LEARNING_RATE,
        help="Learning rate of full fine-tuning (default: its own, "
        "%(default)g); --learning-rate sets the adapters' (default: each "
        "method's own).",
    )
    compare.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="Runs per method, with seeds --seed .. --seed+N-1 (adapter "
        "initialization and batch order; the test split stays): the table "
        "shows mean ± standard deviation and each seed (default: 1).",
    )
    compare.add_argument(
        "--reuse",
        action="store_true",
        help="Keep runs already in the output folder with the same options "
        "(finish an interrupted comparison, or add methods).",
    )
    compare.add_argument(
        "--compare-output",
        default="runs/compare",
        help="Folder for the runs and compare.{md,json,png}.",
    )
    _add_config_flags(compare, FinetuneConfig)


def _grid_entry(text):
    """`METHOD:OPTION=V1,V2` → `(METHOD, OPTION, [V1, V2])`, values read
    as YAML (numbers, booleans)."""
    method, colon, rest = text.partition(":")
    option, _, values = rest.partition("=")
    if not colon or not option or not values:
        raise argparse.ArgumentTypeError(
            "expected METHOD:OPTION=V1,V2 (e.g. houlsby:learning_rate="
            f"1e-4,3e-4). Received: {text!r}."
        )
    parsed = [
        _key_value(f"{option}={v}")[1] for v in values.split(",") if v.strip()
    ]
    return method.strip(), option.strip(), parsed


def _add_sweep(sub):
    """`tf-adapters sweep`: each method's hyperparameters on a validation
    split."""
    sweep = sub.add_parser(
        "sweep",
        help="Choose each method's learning rate (and adapter options) on a "
        "validation split: sweep.{md,json} with every point and the winners.",
        description="Runs `finetune` for every point of each method's grid "
        "(same base, data, steps and batch), holding out --validation-size "
        "training examples (200 if 0). The best validation metric wins; a "
        "tie goes to the earlier point; the test split is reported, never "
        "used to choose. Default grids: "
        + "; ".join(
            f"{m} {', '.join(f'{k} {v}' for k, v in g.items())}"
            for m, g in GRID.items()
        )
        + ".",
    )
    sweep.add_argument(
        "--methods",
        nargs="+",
        default=list(SWEEP_METHODS),
        choices=list(COMPARE_METHODS),
        help="Methods to sweep (default: %(default)s).",
    )
    sweep.add_argument(
        "--grid",
        action="append",
        type=_grid_entry,
        metavar="METHOD:OPTION=V1,V2",
        help="Replace a method's grid for OPTION (repeat the flag); the "
        "first --grid of a method replaces its whole default grid.",
    )
    sweep.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="Seeds per point; points are ranked by their mean.",
    )
    sweep.add_argument(
        "--reuse",
        action="store_true",
        help="Keep runs already in the output folder with the same options.",
    )
    sweep.add_argument(
        "--sweep-output",
        default="runs/sweep",
        help="Folder for the runs and sweep.{md,json}.",
    )
    _add_config_flags(sweep, FinetuneConfig)


def _add_generate(sub):
    """`tf-adapters generate`: text from prompts."""
    generate = sub.add_parser(
        "generate",
        help="Generate text from prompts with a base model (plus an "
        "adapter), with keras-hub's samplers.",
    )
    generate.add_argument("prompts", nargs="+", help="Prompt strings.")
    generate.add_argument(
        "--model", default="embedded", help="Base model (as for finetune)."
    )
    generate.add_argument("--adapter", help=ADAPTER_HELP)
    generate.add_argument("--max-new-tokens", type=int, default=32)
    generate.add_argument(
        "--sampler",
        default="greedy",
        choices=["greedy", "top_k", "top_p", "random", "beam"],
        help="keras-hub sampler.",
    )
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--top-k", type=int, default=50)
    generate.add_argument("--top-p", type=float, default=0.9)
    generate.add_argument("--num-beams", type=int, default=4)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Compile the decoding loop with XLA. Off by default: on CPU, "
        "a few prompts decode faster without it, compilation included "
        "(docs/performance.md, generation); XLA pays off for many prompts "
        "and long outputs.",
    )


def _add_export(sub):
    """`tf-adapters export`: a SavedModel for TF Serving."""
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
        help="Adapter(s): folders from finetune / save_adapter, PEFT adapter "
        "folders or keras-hub .lora.h5 files. With several, one SavedModel "
        "serves them all: every signature takes an `adapter` name per "
        "example.",
    )
    export.add_argument(
        "--format",
        default="saved_model",
        choices=["saved_model", "hf"],
        help="saved_model: a versioned SavedModel for TF Serving under "
        "EXPORT_DIR/NAME/VERSION. hf: a Hugging Face checkpoint "
        "(config.json, model.safetensors, tokenizer) of the model with its "
        "adapter merged, in EXPORT_DIR/NAME, for transformers, vLLM or TGI.",
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


def _add_convert(sub):
    """`tf-adapters convert`: an adapter from one format to another."""
    convert = sub.add_parser(
        "convert",
        help="Convert an adapter between the tf_adapters and PEFT formats "
        "(reads keras-hub .lora.h5 files too).",
        description="Read the adapter SRC onto base model --model (to map "
        "layer names and check shapes) and write it to DST.",
    )
    convert.add_argument("source", metavar="SRC", help=ADAPTER_HELP)
    convert.add_argument("destination", metavar="DST", help="Folder to write.")
    convert.add_argument(
        "--to", required=True, choices=["peft", "tf_adapters"], help="Format."
    )
    convert.add_argument(
        "--model",
        default="embedded",
        help="Base model the adapter belongs to (as for finetune).",
    )
    convert.add_argument(
        "--base-model-name-or-path",
        help="For --to peft: the Hugging Face model id or folder PEFT should "
        "load the adapter onto (recorded in adapter_config.json).",
    )


def _add_demo(sub):
    """`tf-adapters demo`: the one-minute adapter life cycle check."""
    demo = sub.add_parser(
        "demo",
        help="A one-minute check of the adapter life cycle on a tiny "
        "random-weight GPT-2 (add, train, save, reload, merge).",
    )
    demo.add_argument("--output", default="runs/demo", help="Output folder.")
    demo.add_argument("--epochs", type=int, default=6)
    demo.add_argument("--rank", type=int, default=8)
    demo.add_argument("--seed", type=int, default=0)


def main(argv=None):
    args = vars(build_parser().parse_args(argv))
    verbose = args.pop("verbose")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Before anything compiles: later runs load the compiled programs.
    xla_cache.enable()
    _load_library(verbose)
    from tf_adapters.pipeline import TrainingInterrupted

    command = args.pop("command")
    try:
        if command == "finetune":
            from tf_adapters.pipeline import run_finetune

            run_finetune(_finetune_config(args))
            return 0
        if command == "evaluate":
            from tf_adapters.pipeline import run_evaluate
            from tf_adapters.pipeline.evaluate import run_label_bias
            from tf_adapters.pipeline.evaluate import run_options

            adapter = args.pop("adapter", None)
            weights = args.pop("weights", None)
            saved = adapter or weights
            recorded = run_options(saved) if saved else {}
            options, source = _options(args)
            config = FinetuneConfig.from_dict({**recorded, **options}, source)
            bias = run_label_bias(saved) if saved else None
            run_evaluate(config, adapter, weights, label_bias=bias)
            return 0
        if command == "compare":
            from tf_adapters.pipeline import run_compare

            methods = args.pop("methods")
            output = args.pop("compare_output")
            full_lr = args.pop("full_learning_rate")
            reuse = args.pop("reuse")
            seeds = args.pop("seeds")
            options, source = _options(args)
            fuse = options.pop("fuse", None)
            config, adapter_options = FinetuneConfig.split_options(options)
            run_compare(
                FinetuneConfig.from_dict(config, source),
                methods,
                output,
                full_lr,
                reuse,
                adapter_options,
                fuse,
                seeds,
            )
            return 0
        if command == "sweep":
            from tf_adapters.pipeline import run_sweep

            methods = args.pop("methods")
            output = args.pop("sweep_output")
            reuse, seeds = args.pop("reuse"), args.pop("seeds")
            grid = {}
            for method, option, values in args.pop("grid") or ():
                grid.setdefault(method, {})[option] = values
            options, source = _options(args)
            run_sweep(
                FinetuneConfig.from_dict(options, source),
                methods,
                grid,
                output,
                reuse,
                seeds,
            )
            return 0
        if command == "generate":
            from tf_adapters.pipeline import run_generate

            return run_generate(args)
        if command == "export":
            from tf_adapters.pipeline import run_export

            return run_export(args)
        if command == "convert":
            from tf_adapters.pipeline import run_convert

            return run_convert(args)
        from tf_adapters.pipeline import run_demo

        return 0 if run_demo(**args)["ok"] else 1
    except (
        ValueError,
        TypeError,
        FileNotFoundError,
        FileExistsError,
        FloatingPointError,
    ) as e:
        print(f"tf-adapters {command}: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        print(f"tf-adapters {command}: error: {e}", file=sys.stderr)
        return 2
    except SaveError as e:
        print(f"tf-adapters {command}: error: {e}", file=sys.stderr)
        return EXIT_SAVE_FAILED
    except TrainingInterrupted as e:
        print(f"tf-adapters {command}: interrupted: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _load_library(verbose):
    """Loads TensorFlow and the library, hiding their start-up noise unless
    `verbose` (`quiet`). The `tf-adapters` command (`tf_adapters_cli`)
    imports this module with the package's imports deferred
    (`tf_adapters.DEFERRED`); they run here, so Keras knows every class
    that `import tf_adapters` registers."""
    import tf_adapters

    if not verbose:
        quiet.hide_noise()
    with contextlib.nullcontext() if verbose else quiet.filtered_stderr():
        if tf_adapters.DEFERRED:
            importlib.reload(tf_adapters)


def _options(args):
    """The options of a config file (`--config`) and the flags given, which
    win; and where they came from."""
    options = {}
    config_path = args.pop("config", None)
    if config_path:
        options.update(FinetuneConfig.from_file(config_path))
    flags = args.pop("adapter", None)
    if flags:
        # `--adapter-option KEY=VALUE` flags win over the file's `adapter:`.
        adapter = options.get("adapter") or {}
        if not isinstance(adapter, dict):
            raise ValueError(
                f"{config_path}: `adapter` must be a mapping of adapter "
                f"option: value. Received: {adapter!r}."
            )
        options["adapter"] = {**adapter, **dict(flags)}
    options.update(args)
    return options, config_path or "flags"


def _finetune_config(args):
    options, source = _options(args)
    return FinetuneConfig.from_dict(options, source)


if __name__ == "__main__":
    sys.exit(main())

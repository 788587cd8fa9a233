"""`tf-adapters generate`: text from the base model and an adapter."""

import keras_hub

from tf_adapters.checkpoint import load_adapter
from tf_adapters.data.encoding import tokenize
from tf_adapters.models.loading import load_base


def _sampler(args):
    samplers = keras_hub.samplers
    name, t = args["sampler"], args["temperature"]
    if name == "greedy":
        return samplers.GreedySampler()
    if name == "beam":
        return samplers.BeamSampler(num_beams=args["num_beams"])
    seed = args["seed"]
    if name == "top_k":
        return samplers.TopKSampler(k=args["top_k"], temperature=t, seed=seed)
    if name == "top_p":
        return samplers.TopPSampler(p=args["top_p"], temperature=t, seed=seed)
    return samplers.RandomSampler(temperature=t, seed=seed)


def run_generate(args):
    """`tf-adapters generate`: text from a base model (plus an adapter)
    with a keras-hub sampler; prints each continuation."""
    if args["max_new_tokens"] < 1:
        raise ValueError(
            "--max-new-tokens must be >= 1. Received: "
            f"{args['max_new_tokens']}."
        )
    model = load_base(args["model"])
    if args.get("adapter"):
        load_adapter(model, args["adapter"])
    tokenizer = model.preprocessor.tokenizer
    longest = max(len(ids) for ids in tokenize(tokenizer, args["prompts"]))
    # Room for the start token the preprocessor may add.
    max_length = longest + 1 + args["max_new_tokens"]
    context = getattr(model.backbone, "max_sequence_length", None)
    if context is not None and max_length > context:
        raise ValueError(
            f"The longest prompt ({longest} tokens) plus --max-new-tokens "
            f"({args['max_new_tokens']}) exceeds the model's context of "
            f"{context} tokens; shorten the prompt or ask for fewer tokens."
        )
    model.compile(
        sampler=_sampler(args), jit_compile=bool(args.get("jit_compile"))
    )
    for text in model.generate(args["prompts"], max_length=max_length):
        print(text)
        print("---")
    return 0

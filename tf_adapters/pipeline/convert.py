"""`tf-adapters convert`: an adapter from one format to another."""

from tf_adapters.checkpoint import check_format
from tf_adapters.checkpoint import load_adapter
from tf_adapters.checkpoint import save_adapter
from tf_adapters.models.loading import load_base


def run_convert(args):
    """Reads the adapter at `args["source"]` (a tf_adapters or PEFT folder,
    or a keras-hub `.lora.h5` file) onto base model `args["model"]` and
    writes it to `args["destination"]` in format `args["to"]`.

    The base model is needed to map layer names and check shapes. The
    format is checked before the base model loads.
    """
    check_format(args["to"], "to")
    model = load_base(args["model"])
    load_adapter(model, args["source"], name="converted")
    save_adapter(
        model,
        args["destination"],
        "converted",
        format=args["to"],
        base_model_name_or_path=args.get("base_model_name_or_path"),
    )
    print(
        f"Adapter {args['source']} written to {args['destination']} "
        f"({args['to']} format)."
    )
    return 0

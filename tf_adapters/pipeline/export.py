"""`tf-adapters export`: a SavedModel for TF Serving (or a Hugging Face
checkpoint) from a base model and saved adapters."""

import os

from tf_adapters.export.saved_model import export_saved_model
from tf_adapters.injection.api import active_adapter
from tf_adapters.interop.hf_export import export_hf
from tf_adapters.models.loading import load_base
from tf_adapters.pipeline.fusion import load_with_fused


def run_export(args):
    """`tf-adapters export`: a base model and its adapters as a versioned
    SavedModel (several adapters: one export that routes per example)."""
    model = load_base(args["model"])
    names = []
    for adapter in args.get("adapter") or []:
        load_with_fused(model, adapter)
        # A fusion's adapters come along, but only the folders given route.
        names.append(active_adapter(model))
    if args.get("format", "saved_model") == "hf":
        if len(names) > 1:
            raise ValueError(
                "`--format hf` writes one model with one adapter merged into "
                f"it; {len(names)} adapters were given. Export them one at a "
                "time, or as a SavedModel that routes between them."
            )
        path = os.path.join(args["export_dir"], args["name"])
        export_hf(model, path)
        print(f"Hugging Face checkpoint written to {path}")
        return 0
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

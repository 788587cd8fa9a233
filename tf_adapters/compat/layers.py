"""A layer's sublayers and variables, and attributes Keras must not track.

Keras 3 has no public way to list the sublayers a plain `Layer` tracks
(`Model.layers` exists only on models), nor a layer's own variables without
those of its sublayers (`Layer.weights` is recursive). Both live in private
lists that `Layer.__setattr__` fills. Checked on Keras 3.15-3.16 (dev)
with keras-hub 0.32-0.33 (dev).
"""


def direct_sublayers(layer):
    """The sublayers `layer` tracks directly, in creation order.

    Relies on `Layer._layers` (Keras 3.0+, filled by the layer tracker).
    Public alternative: `Model.layers`, for models only.
    """
    return list(layer._layers)


def keras_walk_order(layer, children=direct_sublayers):
    """`layer`'s sublayers at every depth in the order of Keras's private
    `Layer._flatten_layers(include_self=False)`, with `children(layer)` in
    place of `layer._layers`.

    keras-hub's `Backbone.save_lora_weights` names layers by their index in
    that order (among those with weights), so reading a `.lora.h5` file
    needs the same order. Keras pops the front of a deque and pushes each
    layer's children with `extendleft`, which reverses them. Checked on
    Keras 3.15-3.16 (dev). Public alternative: none.
    """
    import collections

    found, seen = [], set()
    queue = collections.deque(children(layer))
    while queue:
        child = queue.popleft()
        if id(child) in seen:
            continue
        seen.add(id(child))
        found.append(child)
        queue.extendleft(children(child))
    return found


def own_variables(layer, trainable_only=False):
    """The variables created by `layer` itself, not by its sublayers
    (with `trainable_only`, those created trainable).

    Relies on `Layer._trainable_variables` and `_non_trainable_variables`
    (Keras 3.0+). Public alternative: `layer.weights` minus every
    sublayer's weights, which costs a walk of the whole subtree per call.
    """
    found = list(layer._trainable_variables)
    if not trainable_only:
        found += list(layer._non_trainable_variables)
    return found


def attribute_holding(parent, child):
    """The name of the attribute of `parent` that holds `child`, or `None`.

    keras-hub keeps sublayers in private attributes (`_query_dense`,
    `_feedforward_output_dense`); wrapping one means rebinding that very
    attribute (`compat.tracking.replace_sublayer`). Relies on sublayers
    being plain instance attributes (Keras 3.0+, keras-hub 0.1+). Public
    alternative: none (keras-hub exposes no setter for its sublayers).
    """
    for key, value in vars(parent).items():
        if value is child:
            return key
    return None


def walk_layers(layer):
    """`layer`'s sublayers at every depth (not `layer` itself), each once.

    Built on `direct_sublayers`; Keras's own walk is the private
    `Layer._flatten_layers`.
    """
    found, seen, stack = [], {id(layer)}, direct_sublayers(layer)[::-1]
    while stack:
        child = stack.pop()
        if id(child) in seen:
            continue
        seen.add(id(child))
        found.append(child)
        stack += direct_sublayers(child)[::-1]
    return found


def set_untracked(obj, attr, value):
    """Sets `obj.attr = value` without Keras tracking `value`.

    `Layer.__setattr__` tracks layers and variables it is given (and refuses
    new state once the layer is built); a reference to a layer owned
    elsewhere (a shared adapter's owner) or plain bookkeeping must not be
    tracked. Relies on `Layer.__setattr__` being the only tracking hook
    (Keras 3.0+). Public alternative: none (Keras's `DotNotTrackScope` is
    private too).
    """
    object.__setattr__(obj, attr, value)


def get_untracked(obj, attr, default=None):
    """Reads an attribute set by `set_untracked` on this very object (not
    one inherited from its class)."""
    return vars(obj).get(attr, default)


def del_untracked(obj, attr):
    """Removes an attribute set by `set_untracked`."""
    object.__delattr__(obj, attr)

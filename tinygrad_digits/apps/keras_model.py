"""The Keras twin's model, as the worker builds it from a twin description (``keras_twin``):
Conv2D and Dense layers named like ours, their initializers, the optimizer, and our params in
and out.

Keras comes in as an argument: this module imports neither TensorFlow nor anything of ours that
loads Numba, so the worker can use it.
"""

from __future__ import annotations


def _initializer(keras, family: str, seed: int):
    if family == "he":
        return keras.initializers.HeUniform(seed=seed)
    if family == "glorot":
        return keras.initializers.GlorotUniform(seed=seed)
    if family == "normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=1.0, seed=seed)
    raise ValueError(f"unknown initializer family {family!r}")


def _norm(keras, entry: dict) -> list:
    """The BatchNormalization after a layer (or its pool), as a list: empty without one."""
    name = entry.get("batch_norm")
    return [keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=name)] if name else []


def _conv_layers(keras, twin: dict, seed: int, regularizer) -> list:
    """Rows to images, then per convolution Conv2D (valid, its activation), its MaxPooling2D
    and BatchNormalization if any, and Flatten (then Dropout, if any); convolution i's kernel
    initializer is seeded with ``seed + 1000 + i``."""
    out = [keras.layers.Reshape(tuple(twin["input_shape"]), name="image")]
    for i, block in enumerate(twin["conv"]):
        out.append(keras.layers.Conv2D(
            block["filters"], block["kernel_size"], padding="valid", activation=block["activation"],
            kernel_initializer=_initializer(keras, block["initializer"], seed + 1000 + i),
            bias_initializer="zeros", kernel_regularizer=regularizer, name=block["name"],
        ))
        if block["pool"]:
            out.append(keras.layers.MaxPooling2D(block["pool"], name=f"{block['name']}_pool"))
        out += _norm(keras, block)
    out.append(keras.layers.Flatten(name="flatten0"))
    if twin.get("dropout"):
        out.append(keras.layers.Dropout(twin["dropout"], seed=seed + 999, name="flatten0_dropout"))
    return out


def build_model(keras, twin: dict, seed: int = 0):
    """The twin's Sequential model: Conv2D and Dense layers named like our params, logits out.

    Dense layer i's kernel initializer is seeded with ``seed + i``; leaky_relu is a LeakyReLU layer
    after its Dense (Keras's ``activation="leaky_relu"`` has no slope argument), and dropout a
    Dropout layer after every hidden layer (and after the flatten of a convnet).
    """
    regularizer = keras.regularizers.L2(twin["l2"]) if twin["l2"] else None
    layers = [keras.Input((twin["inputs"],), name="pixels")]
    if twin.get("conv"):
        layers += _conv_layers(keras, twin, seed, regularizer)
    for i, layer in enumerate(twin["layers"]):
        act = layer["activation"]
        norm = _norm(keras, layer)
        layers.append(
            keras.layers.Dense(
                layer["units"],
                activation=None if act in ("leaky_relu", "linear") or norm else act,
                kernel_initializer=_initializer(keras, layer["initializer"], seed + i),
                bias_initializer="zeros",
                kernel_regularizer=regularizer,
                name=layer["name"],
            )
        )
        layers += norm
        if act == "leaky_relu":
            layers.append(keras.layers.LeakyReLU(negative_slope=twin["alpha"], name=layer["name"] + "_act"))
        elif norm and act != "linear":
            layers.append(keras.layers.Activation(act, name=layer["name"] + "_act"))
        if twin.get("dropout") and i < len(twin["layers"]) - 1:  # Keras's own masks, even in same-init
            name = layer["name"] + "_dropout"
            layers.append(keras.layers.Dropout(twin["dropout"], seed=seed + i, name=name))
    return keras.Sequential(layers, name="twin")


def build_optimizer(keras, twin: dict):
    opt = twin["optimizer"]
    lr = opt["learning_rate"]
    if isinstance(lr, dict):
        lr = getattr(keras.optimizers.schedules, lr["class_name"])(**lr["config"])
    return getattr(keras.optimizers, opt["class_name"])(learning_rate=lr, **opt["config"])


def param_specs(twin) -> list:
    """The twin's layers with params, in order: the conv blocks', then the dense layers'."""
    return [*twin.get("conv", ()), *twin["layers"]]


def dense_layers(model, twin):
    """The Keras layers with params (Conv2D and Dense), in ``param_specs``' order."""
    return [model.get_layer(layer["name"]) for layer in param_specs(twin)]


NORM_KEYS = ("gamma", "beta", "mean", "var")  # a BatchNorm's params, in Keras's weights' order


def norm_names(twin) -> list:
    """The twin's BatchNormalization layers, named like ours (batchnorm0, ...), in order."""
    return [entry["batch_norm"] for entry in param_specs(twin) if entry.get("batch_norm")]


def set_params(model, twin, arrays: dict, prefix: str) -> None:
    """Our params (the twin's layers name their keys: "kernel" and "bias") into the Keras layers."""
    for layer, keys in zip(dense_layers(model, twin), param_specs(twin)):
        given = arrays[prefix + keys["kernel"]].dtype
        if layer.kernel.dtype != given.name:
            raise ValueError(f"layer {layer.name} is {layer.kernel.dtype}, its parameters {given.name}")
        layer.set_weights([arrays[prefix + keys["kernel"]], arrays[prefix + keys["bias"]]])
    for name in norm_names(twin):
        model.get_layer(name).set_weights([arrays[f"{prefix}{name}.{key}"] for key in NORM_KEYS])


def get_params(model, twin, prefix: str) -> dict:
    out = {}
    for layer, keys in zip(dense_layers(model, twin), param_specs(twin)):
        kernel, bias = layer.get_weights()
        out[prefix + keys["kernel"]] = kernel
        out[prefix + keys["bias"]] = bias
    for name in norm_names(twin):
        for key, value in zip(NORM_KEYS, model.get_layer(name).get_weights()):
            out[f"{prefix}{name}.{key}"] = value
    return out


def loss_of(keras, twin):
    """Our softmax_cross_entropy: Keras's sparse cross-entropy of logits, or with the twin's
    label smoothing its CategoricalCrossentropy(label_smoothing), our labels made one-hot."""
    smoothing = twin.get("label_smoothing", 0.0)
    if not smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    classes = twin["layers"][-1]["units"]

    class SmoothedCrossentropy(keras.losses.Loss):
        def call(self, labels, logits):
            labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
            onehot = keras.ops.one_hot(labels, classes, dtype=logits.dtype)
            return keras.losses.categorical_crossentropy(onehot, logits, from_logits=True,
                                                         label_smoothing=smoothing)

    return SmoothedCrossentropy(name="smoothed_crossentropy")


def data_loss_metric(keras, twin):
    """The loss without the L2 term, as ours reports it: ``ce`` in fit's logs."""
    if not twin.get("label_smoothing", 0.0):
        return keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="ce")
    return keras.metrics.MeanMetricWrapper(loss_of(keras, twin).call, name="ce")


# -- tasks ---------------------------------------------------------------------------------

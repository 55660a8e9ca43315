"""nnlite.models: the seed networks, one module per network (CharNet/DictNet,
CRNN, attention reader, NAC/NALU, digit sequences, SVHN), each with its
build(), preprocessing, loss, metrics and default training config.

Installed from the repository's top-level models/ folder as nnlite.models
(setup.py's package_dir). ``available()`` lists the networks by name and
``get(name)`` returns (builder, default input shape), as `nnlite summary` uses.
``sizes(name)`` gives the sizes a recipe trains where they differ from the
registered builder's (the seed's). ``recipe_module(name)`` returns the module with the model's training recipe:
the model module itself, or the sibling it names in RECIPE_MODULE (crnn ->
crnn_train), so that building a network never imports the data pipeline.
"""

import importlib

# The model modules, in SPECS order. Each defines MODELS (CLI name -> builder)
# and INPUT_SHAPES (CLI name -> default input shape without the batch); one
# whose recipe lives in a module of its own names it in RECIPE_MODULE.
MODEL_MODULES = ("jaderberg", "attention_reader", "crnn", "nalu", "digit_sequence", "svhn")

# CLI name -> (builder, default input shape); filled on first use, so that
# `import nnlite.models` does not import every network.
_REGISTRY = {}
# CLI name -> the module that registered it (for recipe_module)
_MODULE_OF = {}


def _registry():
    if not _REGISTRY:
        for module_name in MODEL_MODULES:
            module = importlib.import_module(f"{__name__}.{module_name}")
            for name, builder in module.MODELS.items():
                if name in _REGISTRY:
                    raise RuntimeError(f"nnlite.models: {name!r} is registered by two modules")
                _REGISTRY[name] = (builder, tuple(module.INPUT_SHAPES[name]))
                _MODULE_OF[name] = module.__name__
    return _REGISTRY


def available():
    """The registered model names, sorted."""
    return sorted(_registry())


def get(name):
    """(builder, default input shape) of the model registered as `name`;
    a KeyError listing the available names otherwise."""
    registry = _registry()
    if name not in registry:
        raise KeyError(f"unknown model {name!r}; available models: {', '.join(available())}")
    return registry[name]


def recipe_module(name):
    """The module with the training recipe of model `name`, where `nnlite train/
    eval/predict/visualize` look for training_recipe, load_image, predict_texts,
    build_for_checkpoint and attention_masks: the module named by the defining
    module's RECIPE_MODULE (a sibling in nnlite.models), else the defining module
    itself. A KeyError listing the available names for an unknown model."""
    builder, _ = get(name)
    module = importlib.import_module(_MODULE_OF.get(name) or getattr(builder, "__module__", None))
    recipe = getattr(module, "RECIPE_MODULE", None)
    if recipe is None:
        return module
    return importlib.import_module(f"{__name__}.{recipe}")


def sizes(name):
    """(size names, the size `nnlite train NAME` trains, build(size) -> model)
    for a model whose recipe module defines SIZES, DEFAULT_SIZE and
    build_sized(name, size) (crnn, charnet, dictnet: compact by default, the
    seed's on request); None for a model trained at the registered size."""
    module = recipe_module(name)
    if not all(hasattr(module, key) for key in ("SIZES", "DEFAULT_SIZE", "build_sized")):
        return None
    return tuple(module.SIZES), module.DEFAULT_SIZE, lambda size: module.build_sized(name, size)

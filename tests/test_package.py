"""The installed package: public names, version, the models mapping."""
import importlib

import nnlite as nl


def test_public_api_names():
    for name in ["tensor", "Tensor", "Function", "no_grad", "gradcheck", "GradcheckError",
                 "OutOfMemoryError", "set_detect_anomaly", "manual_seed", "cuda", "nn",
                 "optim", "functional", "__version__"]:
        assert hasattr(nl, name), name
    assert nl.__version__.count(".") == 2


def test_models_folder_installs_as_nnlite_models():
    models = importlib.import_module("nnlite.models")
    assert models.__file__.replace("\\", "/").endswith("models/__init__.py")

"""adaprefix: Adaptive Prefix Tuning (APT) and P-tuning v2 on frozen Transformer encoders.

Usage::

    from transformers import AutoModel
    import adaprefix
    encoder = adaprefix.attach(AutoModel.from_pretrained(path), adaprefix.PrefixConfig(method="apt", prefix_len=16))
    model = adaprefix.TaskModel(encoder, "classification", label_names=["no", "yes"])
    adaprefix.save_adapter(model, "my-adapter")
"""

__version__ = "0.1.0"

from .config import PrefixConfig  # noqa: E402
from .backbones import AdaptedEncoder, attach  # noqa: E402
from .model import TaskModel  # noqa: E402
from .adapter_io import AdapterMismatchError, import_peft_prefix, load_adapter, save_adapter  # noqa: E402
from .backbones.packaged import packaged_model_path  # noqa: E402

# Higher layers (training loop, probing, serving) load on first use: `import adaprefix` stays light.
_LAZY = {"probe": ("experiments.probe", "probe"), "make_plan": ("experiments.probe", "make_plan"),
         "MultiAdapterModel": ("serving.multi", "MultiAdapterModel")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'adaprefix' has no attribute {name!r}")

__all__ = [
    "AdaptedEncoder",
    "AdapterMismatchError",
    "MultiAdapterModel",
    "PrefixConfig",
    "TaskModel",
    "attach",
    "import_peft_prefix",
    "load_adapter",
    "make_plan",
    "packaged_model_path",
    "probe",
    "save_adapter",
]

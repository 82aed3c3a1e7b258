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

__all__ = [
    "AdaptedEncoder",
    "AdapterMismatchError",
    "PrefixConfig",
    "TaskModel",
    "attach",
    "import_peft_prefix",
    "load_adapter",
    "save_adapter",
]

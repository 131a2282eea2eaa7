"""`ConfigMixin` and `register_to_config`: the constructor's arguments, defaults applied, as `self.config`."""
import functools
import inspect
from types import SimpleNamespace


class ConfigMixin:
    config_name = "scheduler_config.json"


def register_to_config(init):
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.config = SimpleNamespace(**{k: v for k, v in bound.arguments.items() if k != "self"})
        init(self, *args, **kwargs)

    return wrapper

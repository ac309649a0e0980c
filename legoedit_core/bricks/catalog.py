"""The built-in bricks: every declaration, then every backend module, in catalogue order."""

from legoedit_core.bricks import edit, functions, predict
from legoedit_core.bricks.registry import BrickRegistry, load_plugins


def register(registry: BrickRegistry) -> None:
    predict.register(registry)
    edit.register(registry)
    functions.register(registry)
    from legoedit_core.bricks import cpu, models, vlm

    cpu.register(registry)
    models.register(registry)
    for backend in vlm.BACKENDS:
        registry.add_backend(backend)


def default_registry(plugins: bool = True) -> BrickRegistry:
    """A fresh registry with every built-in brick and (by default) every installed plugin."""
    registry = BrickRegistry()
    register(registry)
    if plugins:
        load_plugins(registry)
    return registry

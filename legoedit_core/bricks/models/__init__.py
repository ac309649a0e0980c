"""Model backends: diffusers and transformers pipelines, loaded through ``legoedit_core.models``.

Importing this package imports neither torch nor the model libraries; they load on a backend's first call.
"""

from legoedit_core.bricks.registry import BrickRegistry


def register(registry: BrickRegistry) -> None:
    for module in _modules():
        for backend in module.BACKENDS:
            registry.add_backend(backend)


def _modules():
    from legoedit_core.bricks.models import editor, fill, segment

    return [fill, editor, segment]

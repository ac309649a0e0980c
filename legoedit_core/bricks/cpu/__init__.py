"""CPU backends: classical methods (Pillow, numpy, OpenCV) and models that ship inside PyPI wheels."""

from legoedit_core.bricks.registry import BrickRegistry


def register(registry: BrickRegistry) -> None:
    for module in _modules():
        for backend in module.BACKENDS:
            registry.add_backend(backend)


def _modules():
    from legoedit_core.bricks.cpu import background, functions, inpaint, recolor, referring, segment, style, text

    return [functions, text, background, inpaint, recolor, style, segment, referring]

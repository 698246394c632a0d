"""torch.hub entry points: one per rs3d model name (``rs3d.list_models()``).

    model = torch.hub.load("/path/to/rs3d", "rs3d_50", source="local", num_classes=10)
    model = torch.hub.load("/path/to/rs3d", "slow_r50", source="local", pretrained=True)   # Kinetics weights

Every entry point takes ``create_model``'s arguments: ``pretrained`` (None / False / True / a source such as
"timm:resnetrs50" or a checkpoint path), ``num_classes`` and config keywords (``num_frames=16``, ``depth=101``).
"""
dependencies = ["torch", "torchvision", "pytorchvideo", "fvcore", "iopath", "yaml"]


def _entry_point(name):
    def entry(pretrained=None, num_classes=None, **overrides):
        from rs3d.models.factory import create_model

        return create_model(name, pretrained=pretrained, num_classes=num_classes, **overrides)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = f"rs3d model {name!r} (configs: rs3d.get_config({name!r})); see rs3d.create_model."
    return entry


def _register():
    from rs3d.config.catalog import list_model_names

    for name in list_model_names():
        globals()[name] = _entry_point(name)


_register()

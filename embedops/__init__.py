"""embedops: the CLI, settings and pipelines that chain training, evaluation, registry and monitoring."""

__version__ = "0.1.0"

"""distill-guard: streaming detection of model-distillation campaigns against an LLM API."""

__version__ = "0.1.0"

"""The original project's import paths (``simple_llm.transformer.gpt``)."""

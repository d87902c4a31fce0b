"""The bottom layer: plain data (pydantic models and frozen dataclasses), no I/O."""

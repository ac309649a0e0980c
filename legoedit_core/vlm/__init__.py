"""Multimodal chat and the engines that answer it (transformers, vLLM, OpenAI-compatible).

One layer used alike by the Builder, the VLM bricks (ADD-PRED, CAP-PRED) and the judge.
"""

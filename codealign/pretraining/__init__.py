"""The base model.

Pretraining it (`base_model`) and measuring what its code share does (`base_model_eval`).
"""

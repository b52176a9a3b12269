"""K specialists.

Clusters of questions (`embed`, `cluster`), one adapter per cluster (`sft`), routed serving.
"""

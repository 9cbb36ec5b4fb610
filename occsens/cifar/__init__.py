"""CIFAR-10: the shipped models, the data loader, the embedded samples, training and evaluation.

Built on the engine (``occsens.engine``: ``Residual`` and the point-wise layer registry); the
engine, checks and report know nothing of it.
"""

"""Frozen dataclasses that are JAX pytrees.

Fields marked with :func:`static_field` are part of the tree structure (hashed by ``jax.jit``,
so they must be hashable and compare by value); every other field is a leaf (traced, vmappable).
"""
from __future__ import annotations

import dataclasses

import jax


def static_field(**kwargs):
    """A dataclass field that is treated as static metadata, not as a pytree leaf."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata["static"] = True
    return dataclasses.field(metadata=metadata, **kwargs)


def pytree_dataclass(cls):
    """Make ``cls`` a frozen dataclass registered as a pytree (static fields are metadata)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    data_fields, meta_fields = [], []
    for field in dataclasses.fields(cls):
        (meta_fields if field.metadata.get("static") else data_fields).append(field.name)
    jax.tree_util.register_dataclass(cls, data_fields=data_fields, meta_fields=meta_fields)
    return cls

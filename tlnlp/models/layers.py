"""Layer groups for any architecture: embeddings, one group per transformer block, and the head.

The groups drive every method that treats depth differently (feature extraction freezes all but the head,
ULMFiT gives each group its own learning rate and unfreezes them one by one). Discovery is generic: the
transformer blocks are the largest :class:`torch.nn.ModuleList` of same-class modules inside the backbone
(``model.base_model``), so no per-architecture table is needed. Models that do not fit that pattern can
register a splitter in :data:`LAYER_SPLITTERS` under their ``config.model_type``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from tlnlp.registry import Registry

__all__ = [
    "LAYER_SPLITTERS",
    "LayerGroup",
    "count_parameters",
    "find_blocks",
    "get_layer_groups",
    "set_requires_grad",
    "unwrap_model",
]

logger = logging.getLogger(__name__)

EMBEDDINGS = "embeddings"
HEAD = "head"


@dataclass
class LayerGroup:
    """A named set of parameters that move together (one learning rate, frozen or trained together).

    Attributes:
        name: ``"embeddings"``, ``"block_0"`` ... ``"block_{n-1}"`` or ``"head"``.
        param_names: Names exactly as ``model.named_parameters()`` yields them for the model the groups were
            computed on (so PEFT-wrapped models keep their ``base_model.model.`` prefixes).
    """

    name: str
    param_names: list[str] = field(default_factory=list)

    def parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        """The group's parameter tensors, looked up in ``model`` (the model the groups were computed on).

        Args:
            model: The model passed to :func:`get_layer_groups`.

        Returns:
            The parameters, in ``param_names`` order.
        """
        wanted = set(self.param_names)
        by_name = {name: param for name, param in model.named_parameters() if name in wanted}
        return [by_name[name] for name in self.param_names]

    def num_parameters(self, model: torch.nn.Module) -> int:
        """Number of scalar weights in the group.

        Args:
            model: The model passed to :func:`get_layer_groups`.

        Returns:
            The summed ``numel`` of the group's parameters.
        """
        return sum(param.numel() for param in self.parameters(model))


#: model_type -> ``splitter(model) -> list[LayerGroup]`` for architectures the generic discovery gets wrong.
LAYER_SPLITTERS: Registry[Callable[[torch.nn.Module], list[LayerGroup]]] = Registry(
    "layer-group splitter", "config.model_type"
)


def unwrap_model(model: torch.nn.Module, keep_peft: bool = False) -> torch.nn.Module:
    """The underlying transformers model of a PEFT, DDP or compiled wrapper (the model itself otherwise).

    Args:
        model: A transformers model, possibly wrapped.
        keep_peft: Stop at a PEFT model (remove only DDP and torch.compile wrappers).

    Returns:
        The innermost model that carries ``config`` (or the PEFT model, with ``keep_peft``).
    """
    seen: set[int] = set()
    while id(model) not in seen:
        seen.add(id(model))
        if not keep_peft and hasattr(model, "get_base_model") and callable(model.get_base_model):  # peft.PeftModel
            model = model.get_base_model()
        elif isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        elif isinstance(compiled := getattr(model, "_orig_mod", None), torch.nn.Module):  # torch.compile
            model = compiled
    return model


def _module_prefix(root: torch.nn.Module, target: torch.nn.Module) -> str | None:
    """Dotted name of ``target`` inside ``root`` ("" for root itself); None when it is not a submodule."""
    for name, module in root.named_modules(remove_duplicate=False):
        if module is target:
            return name
    return None


def _count(module: torch.nn.Module) -> int:
    return sum(param.numel() for param in module.parameters())


def find_blocks(backbone: torch.nn.Module) -> tuple[str, torch.nn.ModuleList] | None:
    """Find the transformer blocks: the largest ``ModuleList`` whose children all share one class.

    "Largest" is by parameter count, then by number of children, then first in registration order.

    Args:
        backbone: The backbone module (``model.base_model``).

    Returns:
        ``(dotted name inside backbone, the ModuleList)``, or None when no such list holds any parameter.
    """
    best: tuple[int, int] | None = None
    found: tuple[str, torch.nn.ModuleList] | None = None
    for name, module in backbone.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        if len({type(child) for child in module}) != 1:
            continue
        size = (_count(module), len(module))
        if size[0] > 0 and (best is None or size > best):
            best, found = size, (name, module)
    return found


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _under(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def _input_embedding_ids(inner: torch.nn.Module) -> set[int]:
    getter = getattr(inner, "get_input_embeddings", None)
    try:
        embeddings = getter() if callable(getter) else None
    except (NotImplementedError, AttributeError):
        embeddings = None
    if not isinstance(embeddings, torch.nn.Module):
        return set()
    return {id(param) for param in embeddings.parameters()}


def _generic_groups(model: torch.nn.Module) -> list[LayerGroup]:
    inner = unwrap_model(model)
    backbone = getattr(inner, "base_model", inner)
    backbone = backbone if isinstance(backbone, torch.nn.Module) else inner
    backbone_prefix = _module_prefix(model, backbone)
    found = find_blocks(backbone)
    if backbone_prefix is None or found is None:
        model_type = getattr(getattr(inner, "config", None), "model_type", type(inner).__name__)
        raise ValueError(
            f"Could not find the transformer blocks of {type(inner).__name__} (no ModuleList of same-class "
            f"modules with parameters in its backbone). Register a splitter for it: "
            f"tlnlp.models.LAYER_SPLITTERS.register({model_type!r}, my_splitter)."
        )
    list_name, blocks = found
    blocks_prefix = _join(backbone_prefix, list_name)
    block_prefixes = [_join(blocks_prefix, child) for child, _ in blocks.named_children()]
    embedding_ids = _input_embedding_ids(inner)

    groups = [LayerGroup(EMBEDDINGS)]
    groups += [LayerGroup(f"block_{i}") for i in range(len(blocks))]
    groups.append(LayerGroup(HEAD))
    seen_blocks = False
    for name, param in model.named_parameters():  # removes duplicates: tied weights appear once
        if _under(name, blocks_prefix):
            seen_blocks = True
            index = next(i for i, prefix in enumerate(block_prefixes) if _under(name, prefix))
            groups[1 + index].param_names.append(name)
        elif id(param) in embedding_ids or (_under(name, backbone_prefix) and not seen_blocks):
            groups[0].param_names.append(name)
        else:
            groups[-1].param_names.append(name)
    return groups


def get_layer_groups(model: torch.nn.Module) -> list[LayerGroup]:
    """Split a model's parameters into input-to-output layer groups.

    Groups, in order: ``"embeddings"`` (backbone parameters registered before the blocks, plus the input
    embeddings wherever they sit), ``"block_0"`` ... ``"block_{n-1}"``, and ``"head"`` (everything else: the
    task head and backbone parameters after the blocks, such as BERT's pooler or GPT-2's ``ln_f``). Every
    parameter of ``model.named_parameters()`` is in exactly one group (tied weights once); ``"embeddings"``
    and ``"head"`` are always present, possibly empty.

    Args:
        model: A transformers model with any head (sequence classification, masked/causal LM, QA...), possibly
            wrapped by PEFT; names in the result match its ``named_parameters()``.

    Returns:
        The groups, ``n_blocks + 2`` of them.

    Raises:
        ValueError: No transformer blocks were found and no splitter is registered for the model type.
    """
    model_type = getattr(getattr(unwrap_model(model), "config", None), "model_type", None)
    if model_type is not None and model_type in LAYER_SPLITTERS:
        groups = LAYER_SPLITTERS.get(model_type)(model)
    else:
        groups = _generic_groups(model)
    logger.debug("Layer groups: %s", ", ".join(f"{g.name}={len(g.param_names)}" for g in groups))
    return groups


def _relative_embeddings_first(model: torch.nn.Module) -> list[LayerGroup]:
    """DeBERTa: the encoder's relative-position embeddings (and their LayerNorm) feed every block."""
    groups = _generic_groups(model)
    shared = ("encoder.rel_embeddings.", "encoder.LayerNorm.")
    moved = {name for name in groups[-1].param_names if any(part in name for part in shared)}
    groups[0].param_names.extend(name for name in groups[-1].param_names if name in moved)
    groups[-1].param_names = [name for name in groups[-1].param_names if name not in moved]
    return groups


LAYER_SPLITTERS.register("deberta", _relative_embeddings_first)
LAYER_SPLITTERS.register("deberta-v2", _relative_embeddings_first)


def set_requires_grad(model: torch.nn.Module, param_names: Iterable[str], requires_grad: bool) -> int:
    """Set ``requires_grad`` on the named parameters of ``model``.

    Args:
        model: The model the names belong to.
        param_names: Names as ``model.named_parameters()`` yields them.
        requires_grad: The flag to set.

    Returns:
        How many scalar weights were changed.

    Raises:
        KeyError: A name is not a parameter of ``model``.
    """
    params = dict(model.named_parameters())
    changed = 0
    for name in param_names:
        if name not in params:
            raise KeyError(f"{name!r} is not a parameter of {type(model).__name__}")
        params[name].requires_grad_(requires_grad)
        changed += params[name].numel()
    return changed


def count_parameters(model: torch.nn.Module) -> dict[str, int | float]:
    """Count trainable and total parameters, tied weights once.

    Args:
        model: Any torch module.

    Returns:
        ``{"trainable": int, "total": int, "trainable_percent": float}`` (percent in 0-100).
    """
    total = trainable = 0
    for param in model.parameters():  # parameters() yields a tied tensor once
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    percent = 100.0 * trainable / total if total else 0.0
    return {"trainable": trainable, "total": total, "trainable_percent": percent}

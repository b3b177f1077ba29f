"""The machinery behind ``lrbridge.lr_scheduler``: torch's LRScheduler protocol
with every value read from the schedule server.

A bridged scheduler holds a spec (torch's class name and constructor kwargs),
opens it on the server against the optimizer's param groups, and then plays
rows: row k is what torch's scheduler holds after k ``step()`` calls. No
schedule math happens here; this module only knows *which* row to write and
how torch writes it (``fill_`` for tensor lrs, ``betas`` rebuilt as a tuple,
the order and deprecation warnings, ``last_epoch``/``_step_count``).

Hot path: ``step()`` reads the stream's current window through mirrors
(``_lo``, ``_hi``, ``_lr_flat``, ``_mom_flat``: flat ``array('d')``, value
``(k - _lo) * groups + g``). ``_hi`` is 0 whenever a step needs the general
path (first step: warnings; after a resume or ``step(epoch)``), so
the fast path is a bounds check, one array index (one slice with several
groups) and the group writes. It allocates nothing the GC tracks beyond the
new ``_last_lr`` list, which frees the old one: training loops that allocate
little themselves then see no extra garbage collections.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import EPOCH_DEPRECATION_WARNING, LRScheduler

from . import heartbeat
from ._row_writer import group_value, has_tensor_lrs, row_writer, write_group_keys
from .client import Client, Opened, resolve_client
from .prefetch import WindowStream

# Per-process objects (the connection, the stream and the fast path's mirrors of its
# window, the children of a composite): slots, not ``__dict__``, so that ``__dict__``
# is exactly the state torch's protocol carries (state_dict, and what a copy loaded
# from it compares equal on).
PROCESS_SLOTS = (
    "_origin",  # where the stream's rows continue from: derived again on load
    "_client",
    "_client_arg",
    "_opened",
    "_stream",
    "_lo",
    "_hi",
    "_lr_rows",
    "_mom_rows",
    "_lr_flat",
    "_mom_flat",
    "_groups",
    "_write_row",
    "_tensor_lrs",
    "_schedulers",
    "_snapshot",
    "_tcur_flat",
    "_ti_flat",
    "_parent",
    "_children_at",
    "_open_via",
    "_use_pending",
)
# Never loaded from a checkpoint: the optimizer, the slots, and `_row_end`, which only
# older checkpoints hold (the end now comes from the server: opened.row_end).
TRANSIENT = frozenset({"optimizer", "_row_end", *PROCESS_SLOTS})
# Rows per window: one request per 8192 steps, asked for a whole window ahead
# (fewer rows with many groups: the stream caps a window at WINDOW_VALUES values).
STREAM_WINDOW = 8192

ORDER_WARNING = (
    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
    "In PyTorch 1.1.0 and later, you should call them in the opposite order: "
    "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this "
    "will result in PyTorch skipping the first value of the learning rate schedule. "
    "See more details at "
    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
)
OVERRIDDEN_WARNING = (
    "Seems like `optimizer.step()` has been overridden after learning rate scheduler "
    "initialization. Please, make sure to call `optimizer.step()` before "
    "`lr_scheduler.step()`. See more details at "
    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
)


# --------------------------------------------------------------------------
# Small helpers shared by the scheduler classes


def check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


def check_number(name: str, value: Any) -> None:
    """torch compares these at construction, so a non-number is a TypeError there too."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}")


def expression(name: str, value: Any, variable: str, example: str) -> str:
    """lrbridge takes the math of a lambda as an expression string, evaluated on the server."""
    if isinstance(value, str):
        return value
    if callable(value):
        raise TypeError(
            f"lrbridge: {name} must be an expression string over `{variable}` such as "
            f"{example!r}, not a Python callable: the schedule is computed by the lrbridge "
            "server, which cannot run Python code."
        )
    raise TypeError(
        f"lrbridge: {name} should be an expression string over `{variable}` such as "
        f"{example!r}, but got {type(value).__name__}"
    )


def plain(value: Any) -> Any:
    """Spec values as JSON: tuples/Counters become lists."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def make_spec(type_name: str, **kwargs: Any) -> dict:
    """torch's class name and its kwargs; None means "not given" and is left out."""
    spec: dict[str, Any] = {"type": type_name}
    for key, value in kwargs.items():
        if value is not None:
            spec[key] = plain(value)
    return spec


def current_lrs(optimizer: Optimizer, key: str = "lr") -> list:
    """torch's _param_groups_val_list(optimizer, key): tensors cloned, never aliased."""
    return [g[key].clone() if isinstance(g[key], Tensor) else g[key] for g in optimizer.param_groups]


_DTYPES = {"torch.float32": "float32", "torch.float64": "float64"}


_RESUMED_KEYS = ("max_lr", "min_lr", "max_momentum", "base_momentum")


def group_inits(optimizer: Optimizer) -> list[dict]:
    """What `open` sends per group: what torch's constructor reads from it (the
    lr now, initial_lr when set, momentum or betas, a tensor lr's dtype, and
    the keys a resumed OneCycleLR reads back)."""
    defaults = optimizer.defaults
    inits = []
    for group in optimizer.param_groups:
        lr = group["lr"]
        init: dict[str, Any] = {"lr": group_value(lr)}
        if "initial_lr" in group:
            init["initial_lr"] = group_value(group["initial_lr"])
        if "betas" in defaults and "betas" in group:
            init["betas"] = [group_value(b) for b in group["betas"][:2]]
        elif "momentum" in defaults and "momentum" in group:
            init["momentum"] = group_value(group["momentum"])
        if isinstance(lr, Tensor):
            init["lr_dtype"] = _DTYPES.get(str(lr.dtype), "float64")
        for key in _RESUMED_KEYS:
            if key in group:
                init[key] = group_value(group[key])
        inits.append(init)
    return inits


def warn_step_order(optimizer: Optimizer, stacklevel: int) -> None:
    """torch's check on the first user step (pytorch#20124)."""
    if not hasattr(optimizer.step, "_wrapped_by_lr_sched"):
        warnings.warn(OVERRIDDEN_WARNING, UserWarning, stacklevel=stacklevel + 1)
    elif not getattr(optimizer, "_opt_called", False):
        warnings.warn(ORDER_WARNING, UserWarning, stacklevel=stacklevel + 1)


def state_of(scheduler: Any) -> dict[str, Any]:
    """A scheduler's state_dict: its ``__dict__`` (the process's objects are slots) minus the optimizer."""
    return {k: v for k, v in scheduler.__dict__.items() if k != "optimizer"}


def loadable(state_dict: dict[str, Any]) -> dict[str, Any]:
    """What of a checkpoint goes into ``__dict__``."""
    return {k: v for k, v in state_dict.items() if k not in TRANSIENT}


def take_open_via(scheduler: Any) -> dict:
    """A registry schedule's next open goes by ref and/or carries the run (one-shot)."""
    via = getattr(scheduler, "_open_via", None) or {}
    scheduler._open_via = None
    return via


# --------------------------------------------------------------------------
# The bridged scheduler


class Bridged(LRScheduler):
    """torch's LRScheduler protocol over server rows. Subclasses build the spec."""

    __slots__ = PROCESS_SLOTS

    _inert = False
    _chainable = False
    _momentum_key: str | None = None

    # -- construction ------------------------------------------------------

    def _bridge_init(
        self, optimizer: Optimizer, spec: dict, last_epoch: int, server: Any, inits: list | None = None
    ) -> None:
        # A plain dict, not CPython's shared-keys one: heartbeats and state_dict read
        # the state through __dict__, and once it has been looked at, a shared-keys
        # dict sends every attribute access of step() down the slow path (3.11).
        self.__dict__ = dict(self.__dict__)
        self._spec = spec
        self._spec_hash: str | None = None
        self._origin: dict | None = None
        self._client_arg = server
        self._client: Client | None = None
        self._stream: WindowStream | None = None
        self._parent = self._children_at = self._use_pending = None
        # Fast-path mirrors (set by _mirror).
        self._lo = 0
        self._mirror(on=False)
        self._groups = 1
        self._lr_flat: Any = ()
        self._mom_flat: Any = None
        self._tensor_lrs = False  # some group's lr is a Tensor: written with fill_
        # _write_row: set by _pick_writer before the fast path is on
        self._lr_rows: Any = ()  # the window as rows (RowView): CosineAnnealingWarmRestarts' own fast path
        self._mom_rows: Any = None
        self._tcur_flat = self._ti_flat = None
        # The optimizer as torch's constructor finds it: the server simulates the
        # constructor on exactly this (before LRScheduler.__init__ adds initial_lr).
        self._snapshot = (group_inits(optimizer) if inits is None else inits, last_epoch)
        # LRScheduler.__init__: type check, initial_lr, base_lrs, optimizer.step
        # patch for the order warning, then _initial_step (ours, below).
        LRScheduler.__init__(self, optimizer, last_epoch)

    def _client_for(self) -> Client:
        client = self._client
        if client is None:
            client = self._client = resolve_client(self._client_arg)
        return client

    def _open(self) -> Opened:
        """Open the spec against the optimizer state the constructor found."""
        client = self._client_for()
        inits, last_epoch = self._snapshot or (group_inits(self.optimizer), -1)
        via = take_open_via(self)
        self._opened = opened = client.open(self._spec, inits, last_epoch, **via)
        if opened.resolved is not None:
            self._spec = opened.spec  # the canonical spec the ref named
        self._spec_hash = opened.spec_hash
        self._momentum_key = opened.momentum_key
        self._chainable = opened.chainable
        # The stream stops at opened.row_end (OneCycleLR: total_steps + 1), where the server says.
        self._stream = WindowStream(client, opened, 0, window=STREAM_WINDOW)
        heartbeat.watch(self, client, opened)  # read by a background thread, never on step()
        return opened

    def _initial_step(self) -> None:
        """torch's constructor step: row last_epoch + 1, as the server simulated it."""
        self._step_count = 0
        self._start(self._open())

    def _start(self, opened: Opened) -> None:
        """The constructor's writes, from the server's simulation of it."""
        write_group_keys(self.optimizer, opened.group_keys)
        for name, value in opened.attrs.items():
            setattr(self, name, value)
        self.base_lrs = current_lrs(self.optimizer, "initial_lr")
        start = opened.first_row
        self._stream.seek(start, self._origin)
        self._step_count = 1
        self._advance_to(start)
        self._mirror(on=False)  # the first user step checks the call order

    # -- stepping ------------------------------------------------------------

    def step(self, epoch: Any = None) -> None:
        k = self.last_epoch + 1
        if epoch is None and self._lo <= k < self._hi:
            groups = self.optimizer.param_groups
            if self._chainable:
                if self._tensor_lrs:
                    edited = self._lrs_edited()
                elif self._groups == 1:
                    edited = groups[0]["lr"] != self._last_lr[0]
                else:
                    edited = [g["lr"] for g in groups] != self._last_lr
                if edited:
                    return self._general_step(None)  # edited by hand: rebase there
            self._last_lr = self._write_row(groups, self._lr_flat, self._mom_flat, (k - self._lo) * self._groups)
            self.last_epoch = k
            self._step_count += 1
            return None
        return self._general_step(epoch)

    def _lrs_edited(self) -> bool:
        """Some group's lr is not what this scheduler last wrote (changed outside it)."""
        return [group_value(g["lr"]) for g in self.optimizer.param_groups] != [group_value(v) for v in self._last_lr]

    def _general_step(self, epoch: Any) -> None:
        if self._inert:
            raise RuntimeError(
                f"lrbridge: this {type(self).__name__} is part of a SequentialLR/ChainedScheduler, "
                "which steps it: call step() on the composite scheduler"
            )
        if self._step_count == 1:
            warn_step_order(self.optimizer, stacklevel=4)
        if self._use_pending is not None:
            from .registry import send_use

            send_use(self)
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=4)
            self._step_to_epoch(epoch)
        else:
            k = self.last_epoch + 1
            self._rebase_if_edited(k)
            self._advance_to(k)
        self._mirror()

    def _rebase_if_edited(self, k: int) -> None:
        """Chainable schedules continue from an lr changed outside the scheduler (torch's recursive form)."""
        if not self._chainable or "_last_lr" not in self.__dict__:
            return
        now = [group_value(g["lr"]) for g in self.optimizer.param_groups]
        if now != [group_value(v) for v in self._last_lr]:
            self._origin = {"step": k - 1, "lr": now}
            self._stream.seek(k, self._origin)

    def _advance_to(self, k: int) -> None:
        """Write row k (torch increments last_epoch before computing, even when it then raises:
        the stream raises torch's exception where the server's window stops)."""
        self.last_epoch = k
        lr, mom = self._stream.row(k)
        self._write(lr, mom)
        self._apply_attrs(self._stream.row_attrs(k))
        self._children_at = k

    def _sync_children(self) -> None:
        """A composite's children's last_epoch and last lrs at the composite's current row.

        Read when a child is looked at, not on every step: the composite's
        step() stays on the fast path."""
        k = self.last_epoch
        s = self._stream
        if self._children_at == k or s is None or not (s.lo <= k < s.hi):
            return
        self._apply_attrs(s.row_attrs(k))
        self._children_at = k

    def _apply_attrs(self, attrs: dict) -> None:
        """Attributes torch updates each step, as the server's row says: T_cur/T_i,
        and a composite's children's last_epoch and get_last_lr()."""
        children = getattr(self, "_schedulers", None)
        for name, value in attrs.items():
            if name.startswith("schedulers["):
                if children is None:  # a Schedule built from a spec has no child objects
                    continue
                index, field = name[len("schedulers[") :].split("].", 1)
                child = children[int(index)]
                if field == "last_epoch" and value == value:  # NaN: a child without last_epoch
                    child.last_epoch = int(value)
                elif field == "last_lr":
                    value = value if isinstance(value, list) else [value]
                    child._last_lr = [
                        g["lr"].new_tensor(v) if isinstance(g["lr"], Tensor) else v
                        for g, v in zip(self.optimizer.param_groups, value)
                    ]
            else:
                setattr(self, name, int(value) if value.is_integer() else value)

    def _step_to_epoch(self, epoch: Any) -> None:
        """torch's deprecated step(epoch): closed form (or get_lr) at last_epoch = epoch."""
        groups = self.optimizer.param_groups
        self.last_epoch = epoch
        # A recursive get_lr (MultiplicativeLR has no closed form) starts from the lrs as they are.
        now = [group_value(g["lr"]) for g in groups] if self._chainable else None
        window = self._client_for().epoch(self._opened, [epoch], now)
        lr = tuple(window.lr[0].tolist())
        mom = None if window.momentum is None else tuple(window.momentum[0].tolist())
        self._write(lr, mom)
        self._after_epoch_step(epoch, lr)

    def _after_epoch_step(self, epoch: Any, lr: tuple) -> None:
        """Later plain steps continue from row epoch + 1 (from the written lrs when chainable)."""
        nxt = int(epoch) + 1
        if self._chainable:
            self._origin = {"step": nxt - 1, "lr": list(lr)}
        self._stream.seek(nxt, self._origin)

    def _pick_writer(self) -> None:
        """Choose the row writer for the groups as they are (float or tensor lrs, momentum key)."""
        groups = self.optimizer.param_groups
        self._tensor_lrs = has_tensor_lrs(groups)
        self._write_row = row_writer(groups, self._momentum_key)

    def _write(self, lr: tuple, mom: tuple | None) -> None:
        """One row outside the fast path (the groups may have changed since the last window)."""
        self._pick_writer()
        self._last_lr = self._write_row(self.optimizer.param_groups, lr, mom, 0)

    def _mirror(self, on: bool = True) -> None:
        """Point the fast path at the stream's window, or switch it off. The one place
        `_hi` is set: `_hi = 0` sends every step to the general path (children never
        step: their composite does)."""
        s = self._stream
        if not on or self._inert or s is None:
            self._hi = 0
            return
        self._pick_writer()
        self._lo, self._groups, self._lr_flat, self._mom_flat = s.lo, s.groups, s.lr_flat, s.mom_flat
        self._lr_rows, self._mom_rows = s.lr_rows, s.mom_rows
        attrs = s.attrs or {}
        self._tcur_flat, self._ti_flat = attrs.get("T_cur"), attrs.get("T_i")
        self._hi = s.hi  # never past the schedule's end: the stream holds no rows there

    def _resume_origin(self) -> dict | None:
        """Where the rows after a load continue from, derived from the loaded state (so no
        origin is saved): a chainable schedule from the groups' lrs as they are now,
        torch's recursive form, whichever order optimizer and scheduler state were loaded in."""
        if self._chainable and not self._inert:
            return {"step": self.last_epoch, "lr": [group_value(g["lr"]) for g in self.optimizer.param_groups]}
        return None

    # -- torch API -------------------------------------------------------------

    def get_lr(self) -> list:
        """The lrs at ``last_epoch`` (from the server). Prefer get_last_lr()."""
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                UserWarning,
                stacklevel=2,
            )
        return list(self._last_lr)

    def _update_lr(self, epoch: Any = None) -> None:
        # torch's SequentialLR calls this on its children; keep it meaningful.
        if epoch is None:
            self._advance_to(self.last_epoch + 1)
        else:
            self._step_to_epoch(epoch)
        self._mirror()

    def state_dict(self) -> dict[str, Any]:
        """torch's ``__dict__`` minus the optimizer (the connection objects are slots): picklable."""
        return state_of(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``__dict__.update`` like torch, then position the stream at ``last_epoch + 1``.

        Like torch, the checkpoint's hyper-parameters win: a different spec in
        the checkpoint is re-opened (with a warning naming both hashes). A
        chainable schedule continues from the group lrs as they are now, as
        torch's recursive form does (whichever order optimizer and scheduler
        state were loaded in).
        """
        saved = loadable(state_dict)
        saved_spec, saved_hash = saved.get("_spec"), saved.get("_spec_hash")
        constructed_pin = self.__dict__.get("_registry")
        self.__dict__.update(saved)
        if constructed_pin is not None and saved.get("_registry") is not None:
            from .registry import retarget_use

            retarget_use(self, saved["_registry"], self.last_epoch + 1)
        if saved_spec is not None and saved_hash != self._opened.spec_hash:
            if constructed_pin is not None and saved.get("_registry") is not None:
                from .registry import kept_message

                warnings.warn(kept_message(saved["_registry"], constructed_pin), UserWarning, stacklevel=2)
            else:
                warnings.warn(
                    f"lrbridge: the checkpoint's schedule (spec_hash {saved_hash}) differs from the one "
                    f"constructed ({self._opened.spec_hash}); continuing with the checkpoint's, as torch does.",
                    UserWarning,
                    stacklevel=2,
                )
            self._open()
        self._reposition()

    def _reposition(self) -> None:
        self._origin = self._resume_origin()
        self._stream.seek(self.last_epoch + 1, self._origin)
        self._mirror(on=False)

    def _become_part_of(self, parent: "Bridged") -> None:
        """A composite's child: it no longer steps; its composite's rows say where it is."""
        self._parent = parent
        self._inert = True
        self._mirror(on=False)



_CHILD_VIEWS: dict[type, type] = {}


def adopt(parent: "Bridged", child: "Bridged") -> None:
    """Make ``child`` a part of the composite ``parent``: it no longer steps, and its
    last_epoch and get_last_lr() follow the parent's row when they are read."""
    cls = type(child)
    view = _CHILD_VIEWS.get(cls)
    if view is None:

        def _get(self):
            parent = self._parent
            if parent is not None:
                parent._sync_children()
            return self.__dict__["last_epoch"]

        def _set(self, value):
            self.__dict__["last_epoch"] = value

        def get_last_lr(self):
            parent = self._parent
            if parent is not None:
                parent._sync_children()
            return cls.get_last_lr(self)

        view = type(
            cls.__name__,
            (cls,),
            {"last_epoch": property(_get, _set), "get_last_lr": get_last_lr, "__module__": cls.__module__, "__qualname__": cls.__qualname__},
        )
        _CHILD_VIEWS[cls] = view
    child.__class__ = view
    child._become_part_of(parent)

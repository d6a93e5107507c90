"""Saving and loading fitted estimators without pickle.

A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` members, read with
``allow_pickle=False``) holding

- ``__convexnn__``: UTF-8 JSON metadata as a ``uint8`` array: the format name and
  version, the convexnn version that wrote it, the estimator class, its
  ``get_params()``, the layout of the fitted state (scalars inline, arrays by member
  name) and a SHA-256 checksum of every array member;
- ``state.<k>``: the arrays of the estimator's ``_get_fitted_state()``;
- ``extra.<name>``: optional caller arrays (the command line keeps its standardization
  there).

Loading builds the estimator from its class and parameters and calls
``_set_fitted_state``, so predictions round-trip bit for bit. A file written by a newer
format version, a truncated or corrupted file, or one whose checksums do not match
raises :class:`~convexnn.exceptions.ModelFormatError`.

Examples
--------
>>> from convexnn.persistence import save, load      # doctest: +SKIP
>>> save(estimator, "model.npz")                      # doctest: +SKIP
>>> same = load("model.npz")                          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convexnn.exceptions import ModelFormatError, ValidationError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "SavedModel", "load", "read_model", "save"]

logger = logging.getLogger(__name__)


def _host_array(v: Any) -> np.ndarray:
    """An array-like, or a torch tensor on any device, as a NumPy array."""
    import torch

    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    return np.asarray(v)

#: Identifies a convexnn model file.
FORMAT_NAME = "convexnn-model"
#: The version written; files with a larger version are refused.
FORMAT_VERSION = 1

_META = "__convexnn__"
_ESTIMATORS = (
    "ConvexReLURegressor",
    "ConvexReLUClassifier",
    "ConvexGatedReLURegressor",
    "ConvexGatedReLUClassifier",
)


@dataclass
class SavedModel:
    """What :func:`read_model` returns.

    Attributes
    ----------
    estimator : the fitted estimator.
    metadata : dict
        The caller's ``metadata`` given to :func:`save` (JSON values).
    arrays : dict of str to ndarray
        The caller's ``arrays`` given to :func:`save`.
    info : dict
        The file's own metadata (format version, class, parameters, library version).
    """

    estimator: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- encoding


class _Encoder:
    """Turns a nested state into JSON with array references, collecting the arrays."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any, where: str) -> Any:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            return {"__array__": self._add(value, where)}
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            return _encode_float(float(value))
        if isinstance(value, torch.dtype):
            return {"__torch_dtype__": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"__torch_device__": str(value)}
        is_np_type = isinstance(value, type) and issubclass(value, np.generic)
        if isinstance(value, np.dtype) or is_np_type:
            return {"__numpy_dtype__": np.dtype(value).str}
        if isinstance(value, (list, tuple)):
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"__tuple__": items} if isinstance(value, tuple) else items
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise ValidationError(
                        f"Cannot save {where}: its keys must be strings. Got {k!r} instead."
                    )
                out[k] = self.encode(v, f"{where}[{k!r}]")
            return {"__dict__": out}
        raise ValidationError(
            f"Cannot save {where} of type {type(value).__name__}: a model file holds only "
            f"arrays, numbers, strings, None and lists/dicts of those (no pickle)."
        )

    def _add(self, array: np.ndarray, where: str) -> str:
        if array.dtype.kind == "O":
            try:
                array = array.astype(str)
            except (TypeError, ValueError):
                raise ValidationError(
                    f"Cannot save {where}: an object array that is not all strings."
                ) from None
            logger.debug("%s: object array saved as strings", where)
        if array.dtype.kind not in "biufcUS":
            raise ValidationError(
                f"Cannot save {where}: arrays of dtype {array.dtype} are not supported."
            )
        name = f"{self.prefix}.{len(self.arrays)}"
        # (np.ascontiguousarray would turn a 0-d array into shape (1,))
        self.arrays[name] = array if array.flags.c_contiguous else array.copy(order="C")
        return name


def _encode_float(v: float) -> Any:
    if math.isfinite(v):
        return v
    return {"__float__": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}


def _decode(value: Any, arrays: Mapping[str, np.ndarray], path: str) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays, path) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        name = value["__array__"]
        if name not in arrays:
            raise ModelFormatError(
                f"Model file '{path}' is corrupted: the array member {name!r} is missing."
            )
        return arrays[name]
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(_decode(v, arrays, path) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v, arrays, path) for k, v in value["__dict__"].items()}
    if "__torch_dtype__" in value:
        import torch

        dt = getattr(torch, value["__torch_dtype__"], None)
        if not isinstance(dt, torch.dtype):
            raise ModelFormatError(
                f"Model file '{path}' names an unknown torch dtype {value['__torch_dtype__']!r}."
            )
        return dt
    if "__torch_device__" in value:
        import torch

        return torch.device(value["__torch_device__"])
    if "__numpy_dtype__" in value:
        return np.dtype(value["__numpy_dtype__"]).type
    raise ModelFormatError(f"Model file '{path}' holds an unknown value encoding: {value!r}.")


def _digest(array: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes(order="C"))
    return h.hexdigest()


def _class_name(estimator: Any) -> str:
    return type(estimator).__name__


def _resolve_class(name: str) -> Callable[..., Any] | None:
    """The estimator class saved under ``name`` (only convexnn's own estimators)."""
    if name not in _ESTIMATORS:
        return None
    import convexnn

    return getattr(convexnn, name, None)


# --------------------------------------------------------------------------- public API


def save(
    estimator: Any,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    arrays: Mapping[str, Any] | None = None,
) -> Path:
    """Write a fitted estimator to ``path`` (a ``.npz`` archive; no pickle).

    Parameters
    ----------
    estimator : fitted convexnn estimator
        Must provide ``get_params()`` and ``_get_fitted_state()``.
    path : str or path-like
        Destination, written atomically (a temporary file then a rename). The name is
        used as given (no suffix is added).
    metadata : mapping, optional
        JSON-serializable values stored with the model (e.g. feature names).
    arrays : mapping of str to array, optional
        Extra arrays stored with the model (e.g. a standardization).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    ValidationError
        The estimator is not fitted, or its state holds values a model file cannot store.
    """
    name = _class_name(estimator)
    get_state = getattr(estimator, "_get_fitted_state", None)
    if get_state is None or not hasattr(estimator, "get_params"):
        raise ValidationError(
            f"The 'estimator' parameter of save must be a convexnn estimator with "
            f"_get_fitted_state(). Got an object of type {name} instead."
        )
    try:
        state = get_state()
    except Exception as exc:  # NotFittedError and friends
        if type(exc).__name__ == "NotFittedError":
            raise ValidationError(
                f"This {name} instance is not fitted yet; call 'fit' before saving it."
            ) from None
        raise
    params = estimator.get_params(deep=False)
    param_enc = _Encoder("param")
    state_enc = _Encoder("state")
    extra_enc = _Encoder("extra")
    encoded_params = {}
    for key, value in params.items():
        try:
            encoded_params[key] = param_enc.encode(value, f"parameter {key!r}")
        except ValidationError:
            logger.warning(
                "parameter %s=%r of %s cannot be saved; it is restored as None",
                key, value, name,
            )
            encoded_params[key] = None
    state_json = state_enc.encode(dict(state), "the fitted state")
    extra_json = {
        str(k): extra_enc.encode(_host_array(v), f"array {k!r}") for k, v in (arrays or {}).items()
    }
    try:
        user_meta = json.loads(json.dumps(dict(metadata or {}), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"The 'metadata' parameter of save must hold JSON values only: {exc}."
        ) from None
    members = {**param_enc.arrays, **state_enc.arrays, **extra_enc.arrays}
    from convexnn import __version__

    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "convexnn_version": __version__,
        "estimator": name,
        "params": {"__dict__": encoded_params},
        "state": state_json,
        "extra": extra_json,
        "metadata": user_meta,
        "checksums": {k: _digest(v) for k, v in members.items()},
    }
    blob = json.dumps(info, allow_nan=False, sort_keys=True).encode("utf-8")
    members[_META] = np.frombuffer(blob, dtype=np.uint8)
    path = Path(path)
    target_dir = path.parent if str(path.parent) else Path(".")
    if not target_dir.is_dir():
        raise FileNotFoundError(f"Cannot save the model to '{path}': no directory '{target_dir}'.")
    fd, tmp = tempfile.mkstemp(prefix=".convexnn-", suffix=".npz.tmp", dir=target_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **members)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    logger.info("saved %s to %s (%d arrays)", name, path, len(members) - 1)
    return path


def read_model(path: str | os.PathLike[str], *, device: Any = None) -> SavedModel:
    """Read a model file written by :func:`save`, with its extra metadata and arrays.

    Parameters
    ----------
    path : str or path-like
    device : str or torch.device, optional
        Replace the saved ``device`` parameter (e.g. load a GPU-fitted model on a CPU).

    Returns
    -------
    SavedModel

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFormatError
        Not a convexnn model file, a newer format version, truncated or corrupted.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file '{path}' does not exist.")
    try:
        raw = path.read_bytes()
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            names = list(npz.files)
            if _META not in names:
                raise ModelFormatError(
                    f"'{path}' is not a convexnn model file (no {_META!r} member); "
                    f"save models with convexnn.persistence.save."
                )
            info = json.loads(npz[_META].tobytes().decode("utf-8"))
            members = {k: npz[k] for k in names if k != _META}
    except ModelFormatError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, UnicodeDecodeError) as e:
        raise ModelFormatError(
            f"Model file '{path}' is corrupted or truncated and cannot be read ({e})."
        ) from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"'{path}' is not a convexnn model file (unknown format).")
    version = info.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFormatError(
            f"Model file '{path}' has an invalid format version {version!r}."
        )
    if version > FORMAT_VERSION:
        from convexnn import __version__

        raise ModelFormatError(
            f"Model file '{path}' uses format version {version} (written by convexnn "
            f"{info.get('convexnn_version', '?')}); this convexnn {__version__} reads format "
            f"versions up to {FORMAT_VERSION}. Upgrade convexnn to load it."
        )
    checksums = info.get("checksums", {})
    for key, digest in checksums.items():
        if key not in members:
            raise ModelFormatError(
                f"Model file '{path}' is corrupted: the array member {key!r} is missing."
            )
        if _digest(members[key]) != digest:
            raise ModelFormatError(
                f"Model file '{path}' is corrupted: the checksum of {key!r} does not match."
            )
    name = info.get("estimator")
    cls = _resolve_class(str(name))
    if cls is None:
        raise ModelFormatError(
            f"Model file '{path}' holds an estimator of unknown class {name!r}; expected one "
            f"of {', '.join(_ESTIMATORS)}."
        )
    params = _decode(info.get("params", {"__dict__": {}}), members, str(path))
    if not isinstance(params, dict):
        raise ModelFormatError(f"Model file '{path}' is corrupted: bad parameter record.")
    if device is not None and "device" in params:
        params["device"] = device
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ModelFormatError(
            f"Model file '{path}' has parameters that {name} does not accept ({exc})."
        ) from None
    state = _decode(info.get("state", {"__dict__": {}}), members, str(path))
    estimator._set_fitted_state(state)
    extra_refs = info.get("extra", {})
    extra = {k: _decode(v, members, str(path)) for k, v in extra_refs.items()}
    return SavedModel(
        estimator=estimator,
        metadata=dict(info.get("metadata", {})),
        arrays=extra,
        info={k: v for k, v in info.items() if k not in ("state", "extra", "checksums")},
    )


def load(path: str | os.PathLike[str], *, device: Any = None) -> Any:
    """Load a fitted estimator saved by :func:`save`.

    Parameters
    ----------
    path : str or path-like
    device : str or torch.device, optional
        Replace the saved ``device`` parameter.

    Returns
    -------
    estimator
        Of the saved class, with the saved parameters and fitted state: its predictions
        equal the saved model's exactly.

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFormatError
        Not a convexnn model file, a newer format version, truncated or corrupted.
    """
    return read_model(path, device=device).estimator

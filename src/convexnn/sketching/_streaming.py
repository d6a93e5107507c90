r"""Streaming sketches: one pass over a stream of row blocks, and additive updates.

Because ``S`` is linear, the sketch of a matrix assembled from row blocks is the sum of
the blocks' sketches, :math:`S A = \sum_J S_{:,J} A_J`, and an additive change of the
data updates the sketch in place, :math:`S(A + \Delta) = SA + S\Delta`. The accumulator
keeps only the ``m × k`` sketch: memory independent of ``n``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from convexnn.exceptions import ValidationError
from convexnn.sketching._embeddings import Sketch, make_sketch
from convexnn.sketching._precond import svd_solve

__all__ = ["StreamingSketch"]


class StreamingSketch:
    r"""Accumulate :math:`S A` over row blocks of a matrix with ``n`` rows.

    Parameters
    ----------
    sketch : Sketch or str
        A sketch from :func:`~convexnn.sketching.make_sketch`, or its kind (then ``m`` and
        ``n`` are required).
    m, n : int, optional
        Sketch size and total number of rows of the stream (when ``sketch`` is a kind).
    random_state, device, dtype : optional
        Passed to :func:`~convexnn.sketching.make_sketch`.

    Attributes
    ----------
    sketch : Sketch
    rows_seen : int
        Number of rows appended so far.

    Examples
    --------
    >>> import numpy as np
    >>> from convexnn.sketching import StreamingSketch, make_sketch
    >>> A = np.random.default_rng(0).standard_normal((1000, 3))
    >>> acc = StreamingSketch("countsketch", m=50, n=1000, random_state=0)
    >>> for i in range(0, 1000, 128):
    ...     _ = acc.update(A[i:i + 128])
    >>> bool(np.allclose(acc.result(), acc.sketch.apply_left(A)))
    True
    """

    def __init__(
        self,
        sketch: Sketch | str,
        m: int | None = None,
        n: int | None = None,
        *,
        random_state: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if isinstance(sketch, Sketch):
            self.sketch = sketch
        else:
            if m is None or n is None:
                raise ValidationError(
                    "StreamingSketch needs 'm' and 'n' when 'sketch' is a kind name. "
                    f"Got m={m!r}, n={n!r}."
                )
            self.sketch = make_sketch(sketch, m, n, random_state=random_state, device=device,
                                      dtype=dtype)
        self.rows_seen = 0
        self._acc: torch.Tensor | None = None
        self._numpy = False

    def update(self, block: Any, offset: int | None = None) -> StreamingSketch:
        r"""Add :math:`S_{:,J}\,\mathrm{block}` for the rows ``J = [offset, offset + len)``.

        ``offset=None`` appends the block after the rows seen so far; an explicit
        ``offset`` adds a change :math:`\Delta` to rows already seen
        (:math:`S(A + \Delta) = SA + S\Delta`).
        """
        is_np = not isinstance(block, torch.Tensor)
        if is_np:
            block = np.asarray(block)
        start = self.rows_seen if offset is None else int(offset)
        length = int(block.shape[0])
        if start < 0 or start + length > self.sketch.n:
            raise ValidationError(
                f"The row block [{start}, {start + length}) does not fit in the n="
                f"{self.sketch.n} rows of the stream."
            )
        part = self.sketch.apply_left_block(block, start)
        part_t = torch.as_tensor(part) if not isinstance(part, torch.Tensor) else part
        if self._acc is None:
            self._acc = part_t.clone()
            self._numpy = is_np
        else:
            if part_t.shape != self._acc.shape:
                raise ValidationError(
                    f"Every block of the stream must have {tuple(self._acc.shape[1:])} "
                    f"column(s). Got a block of shape {tuple(block.shape)} instead."
                )
            self._acc += part_t.to(device=self._acc.device, dtype=self._acc.dtype)
        if offset is None:
            self.rows_seen += length
        return self

    def result(self) -> Any:
        """The current sketch ``S A`` (NumPy if the blocks were NumPy)."""
        if self._acc is None:
            raise ValidationError("StreamingSketch.result() called before any update().")
        return self._acc.cpu().numpy() if self._numpy else self._acc

    def solve(self, n_targets: int = 1, alpha: float = 0.0) -> Any:
        r"""Sketch-and-solve from the accumulated ``S [A, b]``.

        The last ``n_targets`` columns of the streamed matrix are taken as ``b``; returns
        :math:`\hat x = \arg\min \|S(Ax - b)\|^2 + \alpha\|x\|^2`.
        """
        acc = self._acc
        if acc is None or acc.shape[1] <= n_targets:
            raise ValidationError(
                "StreamingSketch.solve needs streamed blocks [A, b] with more than "
                f"n_targets={n_targets} column(s)."
            )
        x, _ = svd_solve(acc[:, :-n_targets], acc[:, -n_targets:], float(alpha))
        x = x[:, 0] if n_targets == 1 else x
        return x.cpu().numpy() if self._numpy else x

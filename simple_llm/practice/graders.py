"""The graders: run the reader's function on fixed float64 probes and name the mistake it makes.

Each grader computes the reference and deliberately broken variants of it on the same inputs (the
softmax over another axis, another scale, the mask after the softmax, ...). A result that equals a
variant, and not the reference, names the variant's mistakes; up to two mistakes at once are
recognised. The probes are built so that the variants differ from each other: ``T_q != T_k``,
``hs != sqrt(hs)``, a general ``w_qkv`` beside a block-diagonal one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from simple_llm.practice._report import Failed, Finding, Report, call, check_language

RTOL, ATOL = 1e-5, 1e-6
LARGE = 1e4  # the order of the scores in the probe for the maximum subtraction

Options = dict[str, Sequence[tuple[Any, str | None]]]  # option -> [(value, mistake id or None), ...]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True))


def _largest(a: torch.Tensor, ref: torch.Tensor) -> tuple[float, tuple[int, ...]]:
    """The largest |a - ref| (NaN counts as infinite) and its index."""
    d = (a - ref).abs()
    d = torch.where(torch.isnan(d) & ~(torch.isnan(a) & torch.isnan(ref)), torch.inf, d.nan_to_num(0.0))
    flat = int(d.argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), d.shape))
    return float(d.max()), index


def _tensor(value: object, shape: tuple[int, ...], what: str, probe: str) -> torch.Tensor:
    """The reader's result as a float64 tensor of ``shape``, or ``Failed`` saying what it is instead."""
    if not isinstance(value, torch.Tensor):
        raise Failed(
            Finding(
                "return-type",
                (
                    (
                        "return-type",
                        {"expected": f"torch.Tensor {shape} ({what})", "got": type(value).__name__},
                    ),
                ),
            )
        )
    if tuple(value.shape) != shape:
        raise Failed(
            Finding(
                "shape",
                (("shape", {"probe": probe, "expected": shape, "got": tuple(value.shape), "what": what}),),
            )
        )
    if value.dtype == torch.bool or not (value.is_floating_point() or value.is_complex()):
        raise Failed(
            Finding(
                "return-type",
                (
                    (
                        "return-type",
                        {"expected": f"a floating-point tensor ({what})", "got": str(value.dtype)},
                    ),
                ),
            )
        )
    return value.detach().to("cpu", torch.float64)


def _variants(options: Options, max_mistakes: int = 2) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """Every combination of options with at most ``max_mistakes`` wrong ones, fewest first."""
    names = list(options)
    for n in range(max_mistakes + 1):
        for wrong in itertools.combinations(names, n):
            choices = [options[name][1:] if name in wrong else options[name][:1] for name in names]
            for combo in itertools.product(*choices):
                ids = [m for _, m in combo if m is not None]
                yield {name: value for name, (value, _) in zip(names, combo)}, list(dict.fromkeys(ids))


def _diagnose(
    got: list[torch.Tensor],
    labels: list[tuple[str, str]],
    options: Options,
    compute: Callable[[dict[str, Any]], list[torch.Tensor]],
) -> list[Finding]:
    """Findings for results ``got`` (one per (probe, what) in ``labels``) against the variants of ``compute``."""
    reference = compute({name: alternatives[0][0] for name, alternatives in options.items()})
    if all(_close(g, r) for g, r in zip(got, reference)):
        return []
    for values, ids in _variants(options):
        if not ids:
            continue
        variant = compute(values)
        if all(_close(g, r) for g, r in zip(got, variant)):
            # the first probe where the result leaves the reference
            i = next(i for i, (g, r) in enumerate(zip(got, reference)) if not _close(g, r))
            d_ref, index = _largest(got[i], reference[i])
            d_var = max(_largest(g, r)[0] for g, r in zip(got, variant))
            probe, what = labels[i]
            params = {"probe": probe, "what": what, "d_ref": d_ref, "index": index, "d_variant": d_var}
            return [Finding(m, (("variant", params),)) for m in ids]
    for (probe, what), g, r in zip(labels, got, reference):
        bad = ~torch.isfinite(g) & torch.isfinite(r)
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0])
            return [
                Finding(
                    "nan", (("nan", {"probe": probe, "what": what, "count": int(bad.sum()), "index": index}),)
                )
            ]
    i = max(range(len(got)), key=lambda j: _largest(got[j], reference[j])[0])
    d_ref, index = _largest(got[i], reference[i])
    probe, what = labels[i]
    return [
        Finding("unknown", (("unknown", {"probe": probe, "what": what, "d_ref": d_ref, "index": index}),))
    ]


def _large_scores(
    got: torch.Tensor, reference: torch.Tensor, probe: str, before: list[torch.Tensor]
) -> list[Finding]:
    """``no-max-subtraction`` when the result of the large-score probe is not finite where the reference is.

    Only for a function whose results on the ordinary probes (``before``) were finite: NaN there is
    another mistake, already reported.
    """
    bad = ~torch.isfinite(got) & torch.isfinite(reference)
    if not bool(bad.any()) or not all(bool(torch.isfinite(g).all()) for g in before):
        return []
    return [
        Finding(
            "no-max-subtraction",
            (("large-scores", {"probe": probe, "scale": LARGE, "count": int(bad.sum())}),),
        )
    ]


def _grade(
    task: str, lang: str, fn: object, body: Callable[[Callable[..., Any]], tuple[list[Finding], int]]
) -> Report:
    check_language(lang)
    report = Report(task=task, lang=lang)
    if not callable(fn):
        report.findings.append(Finding("signature", (("not-callable", {"got": type(fn).__name__}),)))
        return report
    try:
        findings, report.probes = body(fn)
    except Failed as failed:
        findings = [failed.finding]
    report.findings.extend(findings)
    return report


def _check_timeout(timeout_s: object) -> float:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < math.inf:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    return float(timeout_s)


# ---------------------------------------------------------------------------------------------- attention


def _scales(hs: int, C: int, T_k: int) -> list[tuple[float, str | None]]:
    return [
        (1 / math.sqrt(hs), None),
        (1.0, "missing-scale"),
        (1 / hs, "wrong-scale"),
        (1 / math.sqrt(C), "wrong-scale"),
        (math.sqrt(hs), "wrong-scale"),
        (1 / math.sqrt(T_k), "wrong-scale"),
    ]


def _softmax(s: torch.Tensor, dim: int, naive: bool = False) -> torch.Tensor:
    if naive:
        e = s.exp()
        return e / e.sum(dim=dim, keepdim=True)
    return torch.softmax(s, dim=dim)


def _attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float,
    axis: int = -1,
    mask_mode: str = "before",
    naive: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention with a chosen scale, softmax axis and way of applying the mask (True = may attend)."""
    s = (q @ k.transpose(-2, -1)) * scale  # (B, H, T_q, T_k)
    if mask is not None:
        if mask_mode == "before":
            s = s.masked_fill(~mask, -math.inf)
        elif mask_mode == "polarity":
            s = s.masked_fill(mask, -math.inf)
        elif mask_mode == "zero":
            s = s.masked_fill(~mask, 0.0)
    w = _softmax(s, axis, naive)  # (B, H, T_q, T_k)
    if mask is not None and mask_mode == "after":
        w = w.masked_fill(~mask, 0.0)
    return w @ v, w  # (B, H, T_q, hs), (B, H, T_q, T_k)


def check_attention(fn: Callable[..., Any], *, lang: str = "ru", timeout_s: float = 10.0) -> Report:
    """Grade ``fn(q, k, v, mask=None) -> (out, weights)``, scaled dot-product attention.

    Args:
        fn: The reader's function. q ``(B, H, T_q, hs)``, k and v ``(B, H, T_k, hs)``, mask a bool
            ``(T_q, T_k)`` tensor or None, True meaning "may attend"; it returns ``out``
            ``(B, H, T_q, hs)`` and ``weights`` ``(B, H, T_q, T_k)``. The probes are float64.
        lang: Language of the report, ``"ru"`` or ``"en"``.
        timeout_s: Seconds one call of ``fn`` may take before the grader leaves it.

    Returns:
        The report: ``passed``, the ids of the mistakes, the text.

    Examples:
        >>> import torch
        >>> def attention(q, k, v, mask=None):
        ...     s = q @ k.transpose(-2, -1) / q.size(-1) ** 0.5
        ...     if mask is not None:
        ...         s = s.masked_fill(~mask, float("-inf"))
        ...     w = s.softmax(dim=-2)  # the wrong axis
        ...     return w @ v, w
        >>> check_attention(attention, lang="en").mistakes
        ['softmax-axis']
    """
    timeout = _check_timeout(timeout_s)
    B, H, T_q, T_k, hs = 2, 3, 5, 7, 4
    gen = _generator(0)
    q, k, v = _randn(gen, B, H, T_q, hs), _randn(gen, B, H, T_k, hs), _randn(gen, B, H, T_k, hs)
    mask = torch.rand(T_q, T_k, generator=gen) < 0.5  # (T_q, T_k)
    rows = torch.arange(T_q)
    mask[rows, rows % T_k] = True  # every row sees a key ...
    mask[rows, (rows + 1) % T_k] = False  # ... and misses one
    shapes = f"q {(B, H, T_q, hs)}, k, v {(B, H, T_k, hs)}"
    probes = [f"{shapes}, mask=None", f"{shapes}, mask {(T_q, T_k)}"]
    large = f"{shapes}, mask=None, q, k * {math.sqrt(LARGE):g}"

    def run(fn: Callable[..., Any]) -> tuple[list[Finding], int]:
        got = []
        for probe, m in zip(probes, (None, mask)):
            result = call(
                fn, probe, timeout, q.clone(), k.clone(), v.clone(), mask=None if m is None else m.clone()
            )
            got += _pair(result, (B, H, T_q, hs), (B, H, T_q, T_k), probe)
        options: Options = {
            "scale": _scales(hs, H * hs, T_k),
            "axis": [(-1, None), (-2, "softmax-axis"), (1, "softmax-axis"), (0, "softmax-axis")],
            "mask_mode": [
                ("before", None),
                ("after", "mask-after-softmax"),
                ("polarity", "mask-polarity"),
                ("ignored", "mask-ignored"),
                ("zero", "mask-fill-zero"),
            ],
        }

        def compute(o: dict[str, Any]) -> list[torch.Tensor]:
            return [
                t for m in (None, mask) for t in _attend(q, k, v, m, o["scale"], o["axis"], o["mask_mode"])
            ]

        labels = [(p, what) for p in probes for what in ("out", "weights")]
        findings = _diagnose(got, labels, options, compute)
        big_q, big_k = q * math.sqrt(LARGE), k * math.sqrt(LARGE)
        result = call(fn, large, timeout, big_q.clone(), big_k.clone(), v.clone(), mask=None)
        out, _ = _pair(result, (B, H, T_q, hs), (B, H, T_q, T_k), large)
        findings += _large_scores(out, _attend(big_q, big_k, v, None, 1 / math.sqrt(hs))[0], large, got)
        return findings, 3

    return _grade("attention", lang, fn, run)


def _pair(
    result: object, out_shape: tuple[int, ...], w_shape: tuple[int, ...], probe: str
) -> list[torch.Tensor]:
    if not (isinstance(result, tuple) and len(result) == 2):
        got = (
            f"{type(result).__name__} of {len(result)}"
            if isinstance(result, (tuple, list))
            else type(result).__name__
        )
        raise Failed(
            Finding("return-type", (("return-type", {"expected": "a tuple (out, weights)", "got": got}),))
        )
    return [_tensor(result[0], out_shape, "out", probe), _tensor(result[1], w_shape, "weights", probe)]


# --------------------------------------------------------------------------------- multi-head attention


def _mha(
    x: torch.Tensor,
    w_qkv: torch.Tensor,
    b_qkv: torch.Tensor,
    w_o: torch.Tensor,
    b_o: torch.Tensor,
    H: int,
    causal: bool,
    o: dict[str, Any],
    naive: bool = False,
) -> torch.Tensor:
    """Multi-head attention with the chosen options (the reference when every option is the first one)."""
    B, T, C = x.shape
    hs = C // H
    if o["split"] == "before-projection":  # head h projects its own slice with the diagonal blocks
        parts = x.view(B, T, H, hs)  # (B, T, H, hs)
        w = w_qkv.view(3, H, hs, H, hs)[:, torch.arange(H), :, torch.arange(H), :]  # (H, 3, hs, hs)
        b = b_qkv.view(3, H, hs)  # (3, H, hs)
        qkv = torch.einsum("bthi,hcoi->bthco", parts, w) + b.permute(1, 0, 2)  # (B, T, H, 3, hs)
        q, k, v = (qkv[..., i, :].transpose(1, 2) for i in range(3))  # (B, H, T, hs) each
    else:
        qkv = x @ w_qkv.T + b_qkv  # (B, T, 3C)
        if o["layout"] == "interleaved":
            per_head = qkv.view(B, T, H, 3, hs)  # (B, T, H, 3, hs)
            chunks = [per_head[..., i, :].reshape(B, T, C) for i in range(3)]  # (B, T, C) each
        else:
            parts = qkv.split(C, dim=-1)
            chunks = [parts[i] for i in o["layout"]]  # (B, T, C) each
        if o["split"] == "view":
            q, k, v = (c.reshape(B, H, T, hs) for c in chunks)  # (B, T, C) read as (B, H, T, hs)
        else:
            q, k, v = (c.view(B, T, H, hs).transpose(1, 2) for c in chunks)  # (B, H, T, hs) each
    s = (q @ k.transpose(-2, -1)) * o["scale"]  # (B, H, T, T)
    causal_mode = o["causal"] if causal else "none"
    keep = {
        "ok": torch.ones(T, T, dtype=torch.bool).tril(),
        "shift": torch.ones(T, T, dtype=torch.bool).tril(1),
        "diagonal": torch.ones(T, T, dtype=torch.bool).tril(-1),
        "polarity": ~torch.ones(T, T, dtype=torch.bool).tril(),
        "after": torch.ones(T, T, dtype=torch.bool).tril(),
    }.get(causal_mode)
    if keep is not None and causal_mode != "after":
        s = s.masked_fill(~keep, -math.inf)
    w = _softmax(s, o["axis"], naive)  # (B, H, T, T)
    if keep is not None and causal_mode == "after":
        w = w.masked_fill(~keep, 0.0)
    y = w @ v  # (B, H, T, hs)
    # the merge: (B, H, T, hs) -> (B, T, C), or read as (B, T, C) without the transpose: scrambled
    y = y.reshape(B, T, C) if o["merge"] == "view" else y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
    return y @ w_o.T + b_o if o["projection"] else y  # (B, T, C)


def check_multi_head_attention(
    fn: Callable[..., Any], *, lang: str = "ru", timeout_s: float = 10.0
) -> Report:
    """Grade ``fn(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=True) -> out``, multi-head self-attention.

    Args:
        fn: The reader's function. x ``(B, T, C)``; ``w_qkv`` ``(3C, C)`` and ``b_qkv`` ``(3C,)`` in
            the ``nn.Linear`` convention, rows ``[Q | K | V]``, head h at rows ``h*hs:(h+1)*hs`` of
            each; ``w_o`` ``(C, C)``, ``b_o`` ``(C,)``; ``hs = C // num_heads``; it returns ``(B, T, C)``.
            The probes are float64.
        lang: Language of the report, ``"ru"`` or ``"en"``.
        timeout_s: Seconds one call of ``fn`` may take before the grader leaves it.

    Returns:
        The report: ``passed``, the ids of the mistakes, the text.

    Examples:
        >>> from simple_llm.practice.solutions import multi_head_attention
        >>> check_multi_head_attention(multi_head_attention).passed
        True
    """
    timeout = _check_timeout(timeout_s)
    B, T, C, H = 2, 5, 12, 3
    hs = C // H
    gen = _generator(1)
    x = _randn(gen, B, T, C)
    w_qkv, b_qkv = _randn(gen, 3 * C, C) * 0.3, _randn(gen, 3 * C) * 0.1
    w_o, b_o = _randn(gen, C, C) * 0.3, _randn(gen, C) * 0.1
    blocks = torch.block_diag(*[torch.ones(hs, hs, dtype=torch.float64)] * H).repeat(3, 1)  # (3C, C)
    w_block = w_qkv * blocks  # each of Q, K, V block-diagonal: head h reads only its slice
    shapes = f"x {(B, T, C)}, num_heads={H}"
    cases = [
        (f"{shapes}, causal=True", w_qkv, True),
        (f"{shapes}, causal=False", w_qkv, False),
        (f"{shapes}, causal=True, block-diagonal w_qkv", w_block, True),
    ]
    large = f"{shapes}, causal=True, x * {LARGE**0.5:g}"
    x_large = x * LARGE**0.5

    def run(fn: Callable[..., Any]) -> tuple[list[Finding], int]:
        got = []
        for probe, w, causal in cases:
            args = (x.clone(), w.clone(), b_qkv.clone(), w_o.clone(), b_o.clone(), H)
            got.append(_tensor(call(fn, probe, timeout, *args, causal=causal), (B, T, C), "out", probe))
        options: Options = {
            "layout": [((0, 1, 2), None)]
            + [(p, "qkv-order") for p in itertools.permutations(range(3)) if p != (0, 1, 2)]
            + [("interleaved", "qkv-order")],
            "split": [
                ("ok", None),
                ("before-projection", "split-before-projection"),
                ("view", "view-without-transpose"),
            ],
            "merge": [("ok", None), ("view", "view-without-transpose")],
            "projection": [(True, None), (False, "missing-projection")],
            "scale": _scales(hs, C, T),
            "axis": [(-1, None), (-2, "softmax-axis"), (1, "softmax-axis")],
            "causal": [
                ("ok", None),
                ("none", "causal-future"),
                ("shift", "causal-future"),
                ("diagonal", "causal-diagonal"),
                ("after", "mask-after-softmax"),
                ("polarity", "mask-polarity"),
            ],
        }

        def compute(o: dict[str, Any]) -> list[torch.Tensor]:
            return [_mha(x, w, b_qkv, w_o, b_o, H, causal, o) for _, w, causal in cases]

        findings = _diagnose(got, [(probe, "out") for probe, _, _ in cases], options, compute)
        for i, f in enumerate(findings):
            if f.mistake == "split-before-projection":
                reference = compute({name: alternatives[0][0] for name, alternatives in options.items()})
                d_block = _largest(got[2], reference[2])[0]
                findings[i] = Finding(f.mistake, (*f.details, ("block-diagonal", {"d_block": d_block})))
        args = (x_large.clone(), w_qkv.clone(), b_qkv.clone(), w_o.clone(), b_o.clone(), H)
        out = _tensor(call(fn, large, timeout, *args, causal=True), (B, T, C), "out", large)
        reference_options = {name: alternatives[0][0] for name, alternatives in options.items()}
        findings += _large_scores(
            out, _mha(x_large, w_qkv, b_qkv, w_o, b_o, H, True, reference_options), large, got
        )
        return findings, 4

    return _grade("multi_head_attention", lang, fn, run)


# ---------------------------------------------------------------------------------------------- causal mask


def check_causal_mask(fn: Callable[..., Any], *, lang: str = "ru", timeout_s: float = 10.0) -> Report:
    """Grade ``fn(T) -> mask``, the causal mask: a bool ``(T, T)`` tensor, True where query t may see key s.

    Args:
        fn: The reader's function of the sequence length ``T``.
        lang: Language of the report, ``"ru"`` or ``"en"``.
        timeout_s: Seconds one call of ``fn`` may take before the grader leaves it.

    Returns:
        The report: ``passed``, the ids of the mistakes, the text.

    Examples:
        >>> import torch
        >>> check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1), lang="en").mistakes
        ['causal-diagonal']
    """
    timeout = _check_timeout(timeout_s)
    lengths = (1, 4, 7)

    def ones(T: int) -> torch.Tensor:
        return torch.ones(T, T, dtype=torch.bool)

    variants: list[tuple[Callable[[int], torch.Tensor], str | None]] = [
        (lambda T: ones(T).tril(), None),
        (lambda T: ones(T).tril(1), "causal-future"),
        (lambda T: ones(T), "causal-future"),
        (lambda T: ones(T).triu(), "causal-future"),
        (lambda T: ones(T).tril(-1), "causal-diagonal"),
        (lambda T: ~ones(T).tril(), "mask-polarity"),
        (lambda T: ~ones(T).tril(-1), "mask-polarity"),
    ]

    def run(fn: Callable[..., Any]) -> tuple[list[Finding], int]:
        got = []
        for T in lengths:
            probe = f"T={T}"
            mask = call(fn, probe, timeout, T)
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                got_text = str(mask.dtype) if isinstance(mask, torch.Tensor) else type(mask).__name__
                expected = f"a bool torch.Tensor ({T}, {T}), True = may attend"
                raise Failed(
                    Finding("return-type", (("return-type", {"expected": expected, "got": got_text}),))
                )
            if tuple(mask.shape) != (T, T):
                raise Failed(
                    Finding(
                        "shape",
                        (
                            (
                                "shape",
                                {
                                    "probe": probe,
                                    "expected": (T, T),
                                    "got": tuple(mask.shape),
                                    "what": "mask",
                                },
                            ),
                        ),
                    )
                )
            got.append(mask.cpu().to(torch.float64))
        options: Options = {"variant": variants}
        labels = [(f"T={T}", "mask") for T in lengths]
        findings = _diagnose(
            got, labels, options, lambda o: [o["variant"](T).to(torch.float64) for T in lengths]
        )
        return findings, len(lengths)

    return _grade("causal_mask", lang, fn, run)


# ------------------------------------------------------------------------------------------------- RoPE


def _rope(x: torch.Tensor, start: int, o: dict[str, Any], base: float = 10000.0) -> torch.Tensor:
    """Rotary positions with the chosen pairing, start and direction (rotate_half is the reference)."""
    T, hs = x.size(-2), x.size(-1)
    p = torch.arange(T, dtype=torch.float64) + (start if o["start"] else 0)  # (T,)
    angles = p[:, None] * base ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)  # (T, hs/2)
    cos, sin = angles.cos(), angles.sin() * o["sign"]  # (T, hs/2) each
    if o["pairing"] == "half":
        x1, x2 = x.chunk(2, dim=-1)  # (..., T, hs/2) each
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, hs)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, hs/2) each
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)  # (..., T, hs)


def check_rope(fn: Callable[..., Any], *, lang: str = "ru", timeout_s: float = 10.0) -> Report:
    """Grade ``fn(x, start) -> rotated x``, rotary positions in the rotate_half convention, base 10000.

    Row ``t`` of ``x`` ``(..., T, hs)`` is at position ``start + t``; coordinate ``i`` is paired with
    ``i + hs/2`` and the pair is rotated by ``(start + t) * 10000**(-2i/hs)``, as
    ``simple_llm.RotaryEmbedding`` does.

    Args:
        fn: The reader's function, called as ``fn(x, start)``; the probes are float64.
        lang: Language of the report, ``"ru"`` or ``"en"``.
        timeout_s: Seconds one call of ``fn`` may take before the grader leaves it.

    Returns:
        The report: ``passed``, the ids of the mistakes, the text.

    Examples:
        >>> from simple_llm import RotaryEmbedding
        >>> check_rope(lambda x, start: RotaryEmbedding(x.size(-1))(x, start)).passed
        True
    """
    timeout = _check_timeout(timeout_s)
    shape = (2, 3, 6, 8)  # (B, H, T, hs)
    x = _randn(_generator(2), *shape)
    starts = (0, 5)
    probes = [f"x {shape}, start={s}" for s in starts]

    def run(fn: Callable[..., Any]) -> tuple[list[Finding], int]:
        got = [_tensor(call(fn, p, timeout, x.clone(), s), shape, "out", p) for p, s in zip(probes, starts)]
        options: Options = {
            "pairing": [("half", None), ("interleaved", "rope-pairing")],
            "start": [(True, None), (False, "rope-start")],
            "sign": [(1.0, None), (-1.0, "rope-sign")],
        }
        findings = _diagnose(
            got, [(p, "out") for p in probes], options, lambda o: [_rope(x, s, o) for s in starts]
        )
        return findings, len(starts)

    return _grade("rope", lang, fn, run)


# ------------------------------------------------------------------------------------------ tiled attention


def _tiled(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int, o: dict[str, Any]) -> torch.Tensor:
    """The online softmax over key blocks, with or without the rescaling of the running sums."""
    s_all = (q @ k.transpose(-2, -1)) * o["scale"]  # (..., T_q, T_k)
    m = torch.full(q.shape[:-1], -math.inf, dtype=q.dtype)  # (..., T_q)
    d = torch.zeros(q.shape[:-1], dtype=q.dtype)  # (..., T_q)
    out = torch.zeros_like(q[..., : v.size(-1)])  # (..., T_q, hs)
    for j in range(0, k.size(-2), block):
        s = s_all[..., j : j + block]  # (..., T_q, Bk)
        m_new = torch.maximum(m, s.amax(dim=-1))  # (..., T_q)
        p = torch.exp(s - m_new[..., None])  # (..., T_q, Bk)
        alpha = torch.exp(m - m_new) if o["rescale"] else torch.ones_like(m)  # (..., T_q)
        d = alpha * d + p.sum(dim=-1)
        out = alpha[..., None] * out + p @ v[..., j : j + block, :]
        m = m_new
    return out / d[..., None]  # (..., T_q, hs)


def check_tiled_attention(fn: Callable[..., Any], *, lang: str = "ru", timeout_s: float = 10.0) -> Report:
    """Grade ``fn(q, k, v, block_size) -> out``, attention by the online softmax over key blocks.

    No mask; the scale is ``1/sqrt(hs)``; ``out`` equals ``softmax(q k^T / sqrt(hs)) v``.

    Args:
        fn: The reader's function. q ``(B, H, T_q, hs)``, k and v ``(B, H, T_k, hs)``,
            ``block_size`` a positive int; it returns ``(B, H, T_q, hs)``. The probes are float64.
        lang: Language of the report, ``"ru"`` or ``"en"``.
        timeout_s: Seconds one call of ``fn`` may take before the grader leaves it.

    Returns:
        The report: ``passed``, the ids of the mistakes, the text.

    Examples:
        >>> from simple_llm import tiled_attention
        >>> check_tiled_attention(lambda q, k, v, block_size: tiled_attention(q, k, v, block_size=block_size)).passed
        True
    """
    timeout = _check_timeout(timeout_s)
    B, H, T_q, T_k, hs = 2, 2, 7, 10, 4
    gen = _generator(3)
    q, k, v = _randn(gen, B, H, T_q, hs), _randn(gen, B, H, T_k, hs), _randn(gen, B, H, T_k, hs)
    k = (
        k + torch.linspace(0, 3, T_k, dtype=torch.float64)[:, None]
    )  # later keys score higher: the maximum grows
    blocks = (3, 4)
    shapes = f"q {(B, H, T_q, hs)}, k, v {(B, H, T_k, hs)}"
    probes = [f"{shapes}, block_size={b}" for b in blocks]
    large = f"{shapes}, block_size=3, q, k * {math.sqrt(LARGE):g}"

    def run(fn: Callable[..., Any]) -> tuple[list[Finding], int]:
        got = []
        for probe, b in zip(probes, blocks):
            got.append(
                _tensor(
                    call(fn, probe, timeout, q.clone(), k.clone(), v.clone(), b),
                    (B, H, T_q, hs),
                    "out",
                    probe,
                )
            )
        options: Options = {
            "scale": _scales(hs, H * hs, T_k),
            "rescale": [(True, None), (False, "missing-rescale")],
        }
        compute = lambda o: [_tiled(q, k, v, b, o) for b in blocks]
        findings = _diagnose(got, [(p, "out") for p in probes], options, compute)
        big_q, big_k = q * math.sqrt(LARGE), k * math.sqrt(LARGE)
        result = call(fn, large, timeout, big_q.clone(), big_k.clone(), v.clone(), 3)
        out = _tensor(result, (B, H, T_q, hs), "out", large)
        findings += _large_scores(out, _attend(big_q, big_k, v, None, 1 / math.sqrt(hs))[0], large, got)
        return findings, len(blocks) + 1

    return _grade("tiled_attention", lang, fn, run)

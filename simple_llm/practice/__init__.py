"""Practice: graders that check the reader's own attention code and name the mistake it makes.

Each grader takes the reader's function, runs it on fixed float64 probes beside the reference and
deliberately broken variants of it, and returns a ``Report``:
``passed``, the stable ids of the mistakes (``softmax-axis``, ``missing-scale``, ``wrong-scale``,
``mask-after-softmax``, ``mask-polarity``, ``causal-future``, ``causal-diagonal``,
``split-before-projection``, ``view-without-transpose``, ``missing-projection``, ``qkv-order``,
``shape``, ``rope-pairing``, ``no-max-subtraction``, ...; ``unknown`` for anything else) and a text
in Russian or English with the probe that showed each mistake and a link to the book's section.
A function that raises, has the wrong signature, returns the wrong type, NaN, or runs past
``timeout_s`` gets a report line, not a traceback. From a terminal:
``python -m simple_llm.practice my_attention.py --lang en``.

Examples:
    >>> import torch
    >>> from simple_llm.practice import check_causal_mask
    >>> report = check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.bool).tril(), lang="en")
    >>> report.passed, report.mistakes
    (True, [])
    >>> print(check_causal_mask(lambda T: None, lang="en"))
    causal_mask: not written yet
      [not-written] The function is not written yet
        it returns None or raises NotImplementedError: write it and run the check again
"""

from simple_llm.practice._report import SITE_URL, Report
from simple_llm.practice.graders import (
    check_attention,
    check_causal_mask,
    check_multi_head_attention,
    check_rope,
    check_tiled_attention,
)

__all__ = [
    "SITE_URL",
    "Report",
    "check_attention",
    "check_causal_mask",
    "check_multi_head_attention",
    "check_rope",
    "check_tiled_attention",
]

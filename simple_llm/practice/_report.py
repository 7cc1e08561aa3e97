"""The report of a grader, its texts in Russian and English, and running the reader's function safely."""

from __future__ import annotations

import html
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The book's address: mkdocs.yml's site_url default and pyproject.toml's Documentation URL
# (tests/test_practice.py checks that the three agree).
SITE_URL = "https://simple-llm.github.io/simple-llm/"

LANGUAGES = ("ru", "en")

# id -> (Russian name, English name)
NAMES: dict[str, tuple[str, str]] = {
    "softmax-axis": ("Softmax не по той оси", "Softmax over the wrong axis"),
    "missing-scale": ("Оценки не масштабированы", "The scores are not scaled"),
    "wrong-scale": (
        "Не тот масштаб оценок (нужен 1/sqrt(hs))",
        "The wrong scale of the scores (it is 1/sqrt(hs))",
    ),
    "mask-after-softmax": ("Маска после softmax", "The mask after the softmax"),
    "mask-polarity": (
        "Маска понята наоборот (True значит «можно смотреть»)",
        "The mask read the other way round (True means 'may attend')",
    ),
    "mask-ignored": ("Маска не применена", "The mask is ignored"),
    "mask-fill-zero": ("Закрытые оценки заменены нулём, а не -inf", "Masked scores set to 0 instead of -inf"),
    "causal-future": ("Токен видит более поздний токен", "A token sees a later one"),
    "causal-diagonal": ("Токен не видит сам себя", "A token cannot see itself"),
    "split-before-projection": (
        "Разбиение на головы до проекции",
        "Splitting into heads before the projection",
    ),
    "view-without-transpose": ("view без transpose", "view without transpose"),
    "missing-projection": ("Нет выходной проекции", "No output projection"),
    "qkv-order": (
        "Не тот порядок Q, K, V в строках w_qkv",
        "The wrong order of Q, K, V in the rows of w_qkv",
    ),
    "shape": ("Не та форма результата", "The wrong shape of the result"),
    "rope-pairing": (
        "Пары соседних координат (2i, 2i+1) вместо rotate_half",
        "Neighbouring pairs (2i, 2i+1) instead of rotate_half",
    ),
    "rope-start": ("Начальная позиция start не учтена", "The start position is ignored"),
    "rope-sign": ("Поворот в обратную сторону", "Rotation in the opposite direction"),
    "no-max-subtraction": (
        "Максимум не вычтен: NaN на больших оценках",
        "No subtraction of the maximum: NaN at large scores",
    ),
    "missing-rescale": (
        "Накопленные суммы не пересчитаны при новом максимуме",
        "The running sums are not rescaled when the maximum grows",
    ),
    "unknown": ("Ошибка, которой нет в списке", "A mistake not on the list"),
    "not-written": ("Функция ещё не написана", "The function is not written yet"),
    "signature": ("Не та сигнатура", "The wrong signature"),
    "exception": ("Функция упала с исключением", "The function raised an exception"),
    "return-type": ("Не тот тип результата", "The wrong type of the result"),
    "nan": ("В результате NaN или бесконечность", "NaN or infinity in the result"),
    "timeout": ("Функция работает слишком долго", "The function runs too long"),
}

# id -> (page under chapters/, anchor): the section of the book that explains the mistake
LINKS: dict[str, tuple[str, str]] = {
    "softmax-axis": ("07-common-mistakes", "softmax-axis"),
    "missing-scale": ("07-common-mistakes", "missing-scale"),
    "wrong-scale": ("01-attention", "why-scale"),
    "mask-after-softmax": ("07-common-mistakes", "mask-after-softmax"),
    "mask-polarity": ("04-masks", "polarity"),
    "mask-ignored": ("04-masks", "combine"),
    "mask-fill-zero": ("02-one-head", "minus-inf"),
    "causal-future": ("02-one-head", "causal-mask"),
    "causal-diagonal": ("02-one-head", "causal-mask"),
    "split-before-projection": ("07-common-mistakes", "split-before-projection"),
    "view-without-transpose": ("07-common-mistakes", "view-without-transpose"),
    "missing-projection": ("07-common-mistakes", "missing-projection"),
    "qkv-order": ("03-multi-head", "views"),
    "shape": ("01-attention", "shapes"),
    "rope-pairing": ("09-positions", "rope"),
    "rope-start": ("09-positions", "rope"),
    "rope-sign": ("09-positions", "rope"),
    "no-max-subtraction": ("12-tiled-attention", "safe-softmax"),
    "missing-rescale": ("12-tiled-attention", "online-softmax"),
    "unknown": ("07-common-mistakes", "checks"),
    "nan": ("07-common-mistakes", "checks"),
}

# Sentences of a finding's detail, by key: (Russian, English), formatted with the finding's params.
DETAILS: dict[str, tuple[str, str]] = {
    "variant": (
        "проба {probe}: результат совпадает с вариантом с этой ошибкой (расхождение {d_variant:.1e}), "
        "а от эталона отличается на {d_ref:.3g} в элементе {index} ({what})",
        "probe {probe}: the result equals the variant with this mistake (difference {d_variant:.1e}) "
        "and differs from the reference by {d_ref:.3g} at index {index} ({what})",
    ),
    "block-diagonal": (
        "с блочно-диагональной w_qkv результат равен эталону (расхождение {d_block:.1e}): "
        "тогда каждой голове и правда хватает своего куска признаков",
        "with a block-diagonal w_qkv the result equals the reference (difference {d_block:.1e}): "
        "then each head really needs only its own slice of the features",
    ),
    "large-scores": (
        "проба {probe} с оценками порядка {scale:.0e}: эталон конечен, а в результате {count} элементов NaN или inf",
        "probe {probe} with scores of the order of {scale:.0e}: the reference is finite, the result has "
        "{count} NaN or inf elements",
    ),
    "unknown": (
        "проба {probe}: наибольшее отличие от эталона {d_ref:.3g} в элементе {index} ({what}); "
        "ни одна из известных ошибок его не объясняет",
        "probe {probe}: the largest difference from the reference is {d_ref:.3g} at index {index} ({what}); "
        "none of the known mistakes explains it",
    ),
    "shape": (
        "проба {probe}: ожидалась форма {expected} ({what}), получена {got}",
        "probe {probe}: expected the shape {expected} ({what}), got {got}",
    ),
    "nan": (
        "проба {probe}: {count} элементов NaN или inf ({what}), первый в элементе {index}",
        "probe {probe}: {count} NaN or inf elements ({what}), the first at index {index}",
    ),
    "return-type": (
        "ожидалось {expected}, получено {got}",
        "expected {expected}, got {got}",
    ),
    "signature": (
        "вызов {call} не подходит к сигнатуре {signature}: {error}",
        "the call {call} does not fit the signature {signature}: {error}",
    ),
    "not-callable": (
        "передана не функция, а {got}",
        "got {got}, not a function",
    ),
    "exception": (
        "на пробе {probe}: {error}",
        "on the probe {probe}: {error}",
    ),
    "timeout": (
        "на пробе {probe} функция не закончила за {limit:g} с и остановлена проверкой (работа в отдельном "
        "потоке, лимит задаёт timeout_s; на таких маленьких пробах хватает доли секунды)",
        "on the probe {probe} the function did not finish in {limit:g} s and was left by the grader (it runs "
        "in a thread, the limit is timeout_s; these small probes need a fraction of a second)",
    ),
    "not-written": (
        "она возвращает None или бросает NotImplementedError: напишите её и запустите проверку снова",
        "it returns None or raises NotImplementedError: write it and run the check again",
    ),
}

_HEAD = {
    "passed": ("{task}: всё верно ({probes})", "{task}: correct ({probes})"),
    "not-written": ("{task}: ещё не написана", "{task}: not written yet"),
    "failed": ("{task}: найдено ошибок: {count}", "{task}: {count} mistake(s) found"),
}

_SECTION = ("раздел книги", "the book's section")


def _plural_ru(n: int) -> str:
    """«проба» agreeing with the number ``n``: 1 проба, 3 пробы, 5 проб, 21 проба."""
    if n % 10 == 1 and n % 100 != 11:
        return "проба"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "пробы"
    return "проб"


def check_language(lang: object) -> int:
    """Index of ``lang`` in LANGUAGES, or a ValueError naming it."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
    return LANGUAGES.index(lang)  # type: ignore[arg-type]


def link(mistake: str, lang: str) -> str | None:
    """URL of the book's section about ``mistake`` in ``lang``, or None for a mistake with no section."""
    if mistake not in LINKS:
        return None
    page, anchor = LINKS[mistake]
    prefix = "" if lang == LANGUAGES[0] else f"{lang}/"
    return f"{SITE_URL}{prefix}chapters/{page}/#{anchor}"


@dataclass(frozen=True)
class Finding:
    """One mistake: its stable id and the sentences (detail keys with their parameters) that show it."""

    mistake: str
    details: tuple[tuple[str, dict[str, Any]], ...] = ()

    def text(self, lang: str) -> str:
        i = check_language(lang)
        return "; ".join(DETAILS[key][i].format(**params) for key, params in self.details)


@dataclass
class Report:
    """What a grader found: ``passed``, the ids of the mistakes, and the text in ``lang``.

    Printed (``str``) it is plain text; in Jupyter it shows as HTML (``_repr_html_``).

    Attributes:
        task: Name of the graded function, e.g. ``"attention"``.
        lang: Language of the text, ``"ru"`` or ``"en"``.
        probes: How many probes the function passed when it is correct.
        findings: The mistakes found, in the order they were found.
    """

    task: str
    lang: str = "ru"
    probes: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no mistake was found."""
        return not self.findings

    @property
    def mistakes(self) -> list[str]:
        """Stable ids of the mistakes found, e.g. ``["softmax-axis"]``."""
        return [f.mistake for f in self.findings]

    def _head(self) -> str:
        i = check_language(self.lang)
        if self.passed:
            probes = f"{self.probes} {_plural_ru(self.probes)}" if i == 0 else f"{self.probes} probes"
            return _HEAD["passed"][i].format(task=self.task, probes=probes)
        if self.mistakes == ["not-written"]:
            return _HEAD["not-written"][i].format(task=self.task)
        return _HEAD["failed"][i].format(task=self.task, count=len(self.findings))

    def __str__(self) -> str:
        i = check_language(self.lang)
        lines = [self._head()]
        for f in self.findings:
            lines.append(f"  [{f.mistake}] {NAMES[f.mistake][i]}")
            if f.details:
                lines.append(f"    {f.text(self.lang)}")
            url = link(f.mistake, self.lang)
            if url:
                lines.append(f"    {_SECTION[i]}: {url}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Report(task={self.task!r}, passed={self.passed}, mistakes={self.mistakes})"

    def _repr_html_(self) -> str:
        i = check_language(self.lang)
        colour = "#2e7d32" if self.passed else "#c62828"
        parts = [
            f'<div class="simple-llm-practice"><p><strong style="color:{colour}">{html.escape(self._head())}</strong></p>'
        ]
        if self.findings:
            parts.append("<ul>")
            for f in self.findings:
                item = f"<code>{html.escape(f.mistake)}</code> {html.escape(NAMES[f.mistake][i])}"
                if f.details:
                    item += f"<br>{html.escape(f.text(self.lang))}"
                url = link(f.mistake, self.lang)
                if url:
                    item += f'<br><a href="{html.escape(url)}">{html.escape(_SECTION[i])}</a>'
                parts.append(f"<li>{item}</li>")
            parts.append("</ul>")
        parts.append("</div>")
        return "".join(parts)


class Failed(Exception):
    """Raised inside a grader to stop it with a finding (never leaves the grader)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.mistake)
        self.finding = finding


def call(fn: Callable[..., Any], probe: str, timeout_s: float, *args: Any, **kwargs: Any) -> Any:
    """Call the reader's ``fn`` in a thread with a time limit; any failure becomes ``Failed``.

    A thread cannot be killed: a function past the limit is left running in a daemon thread,
    and the grader reports it.
    """
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as error:
        shown = ", ".join([*(_short(a) for a in args), *(f"{k}={_short(v)}" for k, v in kwargs.items())])
        raise Failed(
            Finding(
                "signature",
                (
                    (
                        "signature",
                        {"call": f"{_name(fn)}({shown})", "signature": _signature(fn), "error": error},
                    ),
                ),
            )
        ) from None
    except ValueError:  # a builtin without a readable signature: just call it
        pass
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as raised:  # the reader's code may raise anything
            result["error"] = raised

    thread = threading.Thread(target=run, name=f"simple_llm.practice:{_name(fn)}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise Failed(Finding("timeout", (("timeout", {"probe": probe, "limit": timeout_s}),)))
    if "error" in result:
        raised = result["error"]
        if isinstance(raised, NotImplementedError):
            raise Failed(Finding("not-written", (("not-written", {}),)))
        text = f"{type(raised).__name__}: {raised}".strip().splitlines()[0]
        raise Failed(Finding("exception", (("exception", {"probe": probe, "error": text}),)))
    if result.get("value") is None:
        raise Failed(Finding("not-written", (("not-written", {}),)))
    return result["value"]


def _name(fn: object) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _signature(fn: Callable[..., Any]) -> str:
    try:
        return f"{_name(fn)}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return _name(fn)


def _short(value: object) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<tensor {tuple(shape)}>"
    return repr(value)

# %% [markdown]
# # Онлайн-softmax FlashAttention: блокнот
#
# Выводим онлайн-softmax на короткой строке, число за числом, затем запускаем `tiled_attention`:
# она обходит ключи и значения блоками и никогда не строит матрицу `(T, T)`. Проверяем, что результат
# совпадает с `F.scaled_dot_product_attention`, и измеряем память. Текст главы:
# [FlashAttention: онлайн-softmax по блокам](../../chapters/12-tiled-attention/).
#
# Обозначения форм: `B` — батч, `T` — длина последовательности, `H` — число голов, `hs` — размер головы.

# %%
# В Colab пакета simple_llm ещё нет: установить его из репозитория проекта (локально ничего не делает).
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("simple_llm") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/simple-llm/simple-llm"],
        check=True,
    )

# %% [markdown]
# ## Зачем вычитать максимум
#
# $$\operatorname{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}.$$
#
# Во float32 экспонента переполняется уже при аргументе около 88,7: для оценок порядка 1000 и
# числитель, и знаменатель бесконечны, а inf / inf — это NaN. Если вычесть из строки её максимум
# $m$, математически ничего не изменится (множитель $e^{-m}$ сокращается), зато все
# показатели станут не больше 0, и каждая экспонента окажется в $(0, 1]$. Это численно устойчивый
# softmax.

# %%
import math

import torch
import torch.nn.functional as F

x = torch.tensor([1000.0, 1001.0, 1002.0])  # оценки одной строки во float32
naive = x.exp() / x.exp().sum()
safe = (x - x.max()).exp() / (x - x.max()).exp().sum()
print("exp(x):            ", x.exp().tolist())
print("наивный softmax:   ", naive.tolist())
print("устойчивый softmax:", ", ".join(f"{p:.4f}" for p in safe.tolist()))
same = torch.allclose(safe, x.softmax(dim=-1))
assert same
print("устойчивый == torch.softmax:", same)

# %% [markdown]
# ## Онлайн-softmax, число за числом
#
# Численно устойчивому softmax нужен максимум раньше суммы: два прохода по строке. Онлайн-softmax
# (Milakov & Gimelshein, 2018) обходится одним. После элемента $j$ он хранит текущий максимум и
# текущую сумму, посчитанную относительно *текущего* максимума:
#
# $$m_j = \max(m_{j-1}, x_j), \qquad d_j = \sum_{i \le j} e^{x_i - m_j}.$$
#
# Когда максимум растёт, старая сумма посчитана относительно старого максимума, поэтому её умножают
# на $e^{m_{j-1} - m_j}$:
#
# $$d_j = d_{j-1}\,e^{m_{j-1}-m_j} + e^{x_j-m_j},$$
#
# начиная с $m_0 = -\infty$ и $d_0 = 0$. Строка из четырёх оценок, шаг за шагом:

# %%
row = [2.0, 1.0, 4.0, 3.0]
m, d = -math.inf, 0.0
print(" j | x_j | m_j | d_j")
for j, x_j in enumerate(row, start=1):
    m_new = max(m, x_j)
    d = d * math.exp(m - m_new) + math.exp(x_j - m_new)  # пересчитать старую сумму, добавить новое слагаемое
    m = m_new
    print(f" {j} | {x_j:.1f} | {m:.1f} | {d:.4f}")
direct = sum(math.exp(x_i - max(row)) for x_i in row)
print(f"сумма exp(x_i - max), посчитанная напрямую: {direct:.4f}")
assert abs(d - direct) < 1e-12

# %% [markdown]
# На шаге 3 максимум растёт с 2 до 4: накопленная сумма 1,3679 умножается на $e^{2-4} \approx 0{,}1353$,
# и прибавляется новое слагаемое $e^{0} = 1$: получается 1,1851. Последний шаг оставляет максимум
# равным 4 и добавляет $e^{3-4}$. Итог совпадает с суммой за два прохода, а веса равны
# $e^{x_i - m} / d$.

# %%
weights = [math.exp(x_i - m) / d for x_i in row]
print("веса:", [round(w, 4) for w in weights])
same = torch.allclose(torch.tensor(weights), torch.tensor(row).softmax(dim=-1), rtol=0, atol=1e-6)
assert same
print("== torch.softmax:", same)

# %% [markdown]
# ## Текущий выход
#
# Вниманию нужны не сами веса, а сумма значений с этими весами,
# $\mathrm{out} = \sum_i \operatorname{softmax}(x)_i\, v_i$. Тот же приём ведёт текущий выход $o_j$ —
# сумму значений с весами $e^{x_i - m_j}$ — и пересчитывает его тем же множителем:
#
# $$o_j = o_{j-1}\,e^{m_{j-1}-m_j} + e^{x_j-m_j}\,v_j,$$
#
# а в конце $\mathrm{out} = o / d$. Веса нигде не хранятся. Значения здесь — числа, чтобы каждый шаг
# можно было прочитать.

# %%
values = [10.0, 20.0, 30.0, 40.0]
m, d, o = -math.inf, 0.0, 0.0
for j, (x_j, v_j) in enumerate(zip(row, values), start=1):
    m_new = max(m, x_j)
    scale = math.exp(m - m_new)  # 1, если максимум не сдвинулся
    d = d * scale + math.exp(x_j - m_new)
    o = o * scale + math.exp(x_j - m_new) * v_j
    m = m_new
    print(f" {j} | m = {m:.1f} | d = {d:.4f} | o = {o:.4f}")
expected = (torch.tensor(row).softmax(dim=-1) @ torch.tensor(values)).item()
print(f"o / d = {o / d:.4f}, softmax(x) @ v = {expected:.4f}")
assert abs(o / d - expected) < 1e-4

# %% [markdown]
# ## Блоки вместо отдельных элементов
#
# Ничего не меняется, если сразу приходит целый блок оценок: новый максимум — большее из старого
# максимума и максимума блока, а блок добавляет сумму своих экспонент. Именно это позволяет GPU (или
# матричному умножению на CPU) обработать плитку оценок за один раз.

# %%
scores = torch.tensor(row, dtype=torch.float64)
vals = torch.tensor(values, dtype=torch.float64)
m, d, o = torch.tensor(-math.inf, dtype=torch.float64), 0.0, 0.0
for block in range(0, 4, 2):
    s, v_blk = scores[block : block + 2], vals[block : block + 2]  # (2,) блок из двух ключей
    m_new = torch.maximum(m, s.max())
    p = (s - m_new).exp()  # (2,)
    d = d * (m - m_new).exp() + p.sum()
    o = o * (m - m_new).exp() + p @ v_blk
    m = m_new
    print(f"после ключей {block}..{block + 1}: m = {m.item():.1f}, d = {d.item():.4f}")
same = torch.allclose(o / d, scores.softmax(dim=-1) @ vals)
assert same
print("блоки по два == softmax(x) @ v:", same)

# %% [markdown]
# Та же рекуррентная формула на строке подлиннее: 32 оценки, блоками по 4. После каждого блока храним
# $m$ и $d$. Как только в блоке попадается оценка больше прежних, максимум поднимается ступенькой, а
# накопленная сумма умножается на множитель пересчёта, прежде чем к ней прибавятся слагаемые самого
# блока.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt

g = torch.Generator().manual_seed(3)
long_row = 2 * torch.randn(32, generator=g, dtype=torch.float64) + torch.linspace(
    0, 4, 32, dtype=torch.float64
)
m, d, running = -math.inf, 0.0, []  # running: (m, d) после каждого блока
for start in range(0, 32, 4):
    s = long_row[start : start + 4]  # (4,) один блок оценок
    m_new = max(m, s.max().item())
    d = d * math.exp(m - m_new) + (s - m_new).exp().sum().item()
    m = m_new
    running.append((m, d))
two_pass = (long_row - long_row.max()).exp().sum().item()
assert abs(d - two_pass) < 1e-12
print("m после каждого блока:", [round(m_b, 2) for m_b, _ in running])
print("d после каждого блока:", [round(d_b, 2) for _, d_b in running])
print(f"d в конце {d:.4f} == сумма за два прохода {two_pass:.4f}:", abs(d - two_pass) < 1e-12)

ends = [start + 3 for start in range(0, 32, 4)]  # последний ключ каждого блока
fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.8, 5.0), sharex=True, layout="constrained")
top.plot(range(32), long_row, "o", color="grey", markersize=4, label="оценка $x_j$")
top.step(ends, [m_b for m_b, _ in running], "o-", where="pre", color="C0", label="текущий максимум $m$")
top.set(ylabel="оценка", title="Одна строка, ключи блоками по 4")
top.set_ylim(-3.5, 9)
top.legend(loc="upper left", ncol=2)
bottom.step(ends, [d_b for _, d_b in running], "o-", where="pre", color="C1")
bottom.set(xlabel="ключ", ylabel="текущая сумма $d$")
for ax in (top, bottom):
    for start in range(4, 32, 4):
        ax.axvline(start - 0.5, color="lightgrey", linewidth=0.8)
plt.close(fig)
fig

# %% [markdown]
# ## Алгоритм по плиткам
#
# `tiled_attention` делает это для всех запросов сразу, причём запросы тоже идут блоками: для каждого
# блока из `block_size` запросов она обходит блоки ключей и хранит для каждого запроса $m$, $d$ и
# текущий выход (вектор из $\mathrm{hs}$ чисел). Такой порядок циклов (запросы снаружи, ключи внутри)
# и одно деление в конце — как во FlashAttention-2 (Dao, 2023). Оценки существуют только по одной
# плитке `(block_size, block_size)`.
# Совпадение с SDPA во float64 для нескольких размеров блока, с каузальной маской и без неё:

# %%
from simple_llm import tiled_attention

_ = torch.manual_seed(0)
B, H, T, hs = 2, 3, 21, 8
q, k, v = torch.randn(3, B, H, T, hs, dtype=torch.float64).unbind(0)  # (B, H, T, hs) каждый
for is_causal in (False, True):
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)  # (B, H, T, hs)
    equal = []
    for block_size in (1, 4, 7, T, 64):
        out = tiled_attention(q, k, v, is_causal=is_causal, block_size=block_size)  # (B, H, T, hs)
        equal.append(torch.allclose(out, expected, rtol=0, atol=1e-10))
    assert all(equal)
    print(f"is_causal={is_causal}, блоки 1, 4, 7, T, 64: == SDPA {equal}; форма {tuple(out.shape)}")

# %% [markdown]
# С `return_lse=True` функция возвращает ещё и логарифм суммы экспонент (log-sum-exp) оценок каждого
# запроса, $m + \log d$. Настоящие ядра сохраняют его для обратного прохода; здесь он совпадает с
# `torch.logsumexp` от полной матрицы оценок.

# %%
out, lse = tiled_attention(q, k, v, is_causal=True, block_size=4, return_lse=True)
full = (q @ k.transpose(-2, -1) / math.sqrt(hs)).masked_fill(
    ~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")
)  # (B, H, T, T), только для проверки
same = torch.allclose(lse, torch.logsumexp(full, dim=-1), rtol=0, atol=1e-10)
assert same
print("lse:", tuple(lse.shape), "== torch.logsumexp от оценок:", same)  # (B, H, T)

# %% [markdown]
# Градиенты проходят через цикл с помощью autograd и совпадают с градиентами SDPA:

# %%
qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
grads = torch.autograd.grad(tiled_attention(qg, kg, vg, is_causal=True, block_size=5).sum(), (qg, kg, vg))
expected = torch.autograd.grad(F.scaled_dot_product_attention(qg, kg, vg, is_causal=True).sum(), (qg, kg, vg))
same = [torch.allclose(a, b, rtol=0, atol=1e-10) for a, b in zip(grads, expected)]
assert all(same)
print("градиенты по q, k, v == SDPA:", same)

# %% [markdown]
# ## Какие плитки обходятся
#
# С каузальной маской запрос видит только ключи до своей позиции включительно. Плитка, все ключи
# которой стоят позже всех её запросов, содержит одни $-\infty$: `tiled_attention` её пропускает. Плитки на
# диагонали обходятся и маскируются внутри, плиткам ниже диагонали маска вообще не нужна. Когда
# запросов меньше, чем ключей (декодирование с KV-кэшем), маска выравнивается по правому нижнему углу:
# последний запрос видит все ключи.


# %%
def tile_kinds(T_q: int, T_k: int, block: int) -> torch.Tensor:
    """Для каждой плитки: 0 — пропущена (всё замаскировано), 1 — на диагонали (частично), 2 — полная."""
    allowed = torch.ones(T_q, T_k, dtype=torch.bool).tril(diagonal=T_k - T_q)  # (T_q, T_k)
    tiles = allowed.view(T_q // block, block, T_k // block, block).transpose(1, 2)  # (n_q, n_k, blk, blk)
    return tiles.any(dim=(-2, -1)).long() + tiles.all(dim=(-2, -1)).long()  # (n_q, n_k)


square, cache = tile_kinds(16, 16, 4), tile_kinds(8, 16, 4)
for name, kinds in (("T_q = T_k = 16", square), ("T_q = 8, T_k = 16", cache)):
    print(f"{name}, блоки по 4: обойдено {int((kinds > 0).sum())} плиток из {kinds.numel()}")
    print(kinds)

# %% [markdown]
# То же число — из самой функции: считаем матричные умножения, которые она выполняет (по два на
# плитку: оценки, затем веса на значения).

# %%
calls = []
matmul = torch.Tensor.__matmul__


def counting_matmul(a, b):
    calls.append(1)
    return matmul(a, b)


torch.Tensor.__matmul__ = counting_matmul  # только в этой ячейке
try:
    q16, k16, v16 = torch.randn(3, 1, 1, 16, 4).unbind(0)  # (B, H, T, hs) каждый
    tiled_attention(q16, k16, v16, is_causal=True, block_size=4)
    tiled_attention(q16[..., 8:, :], k16, v16, is_causal=True, block_size=4)
finally:
    torch.Tensor.__matmul__ = matmul
print(
    "плиток обошла tiled_attention:",
    len(calls) // 2,
    "=",
    int((square > 0).sum()),
    "+",
    int((cache > 0).sum()),
)
assert len(calls) // 2 == int((square > 0).sum() + (cache > 0).sum())

# %%
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

palette = ["#eeeeee", "#f4b860", "#3f6fb5"]  # пропущена, на диагонали, полная
labels = ["пропущена", "маска внутри", "полная"]
fig, axes = plt.subplots(2, 1, figsize=(4.2, 6.0), gridspec_kw={"height_ratios": [4, 2]})
for ax, kinds, title in ((axes[0], square, "T_q = T_k = 16"), (axes[1], cache, "T_q = 8, T_k = 16")):
    n_q, n_k = kinds.shape
    ax.imshow(kinds, cmap=ListedColormap(palette), vmin=0, vmax=2)
    ax.set_xticks(range(n_k), [f"{4 * j}–{4 * j + 3}" for j in range(n_k)])
    ax.set_yticks(range(n_q), [f"{4 * i}–{4 * i + 3}" for i in range(n_q)])
    ax.set_xticks([x - 0.5 for x in range(1, n_k)], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, n_q)], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("ключи")
for ax in axes:
    ax.set_ylabel("запросы")
fig.legend(
    handles=[Patch(color=c, label=t) for c, t in zip(palette, labels)], loc="lower center", ncol=3, fontsize=9
)
fig.tight_layout(rect=(0, 0.06, 1, 1))
plt.show()

# %% [markdown]
# Для длинной последовательности пропускается почти половина плиток: при $n$ блоках на сторону цикл
# обходит $n(n + 1)/2$ плиток из $n^2$.

# %%
for n in (4, 16, 128):
    print(
        f"блоков на сторону {n}: обойдено {n * (n + 1) // 2} плиток из {n * n}, {n * (n + 1) / 2 / n**2:.3f}"
    )

# %% [markdown]
# ## Запрос без единого ключа
#
# Когда запросов больше, чем ключей, выравнивание по правому нижнему углу ставит первые запросы
# раньше всех ключей: вся их строка оценок — $-\infty$. Самописный цикл вычитает тогда из $-\infty$
# текущий максимум $-\infty$, а $(-\infty) - (-\infty)$ — это NaN: классическая ошибка ядер внимания.
# `tiled_attention` возвращает для такого запроса нули, как и весь `simple_llm`, а его log-sum-exp
# равен $-\infty$.

# %%
q9, k4, v4 = torch.randn(9, 8), torch.randn(4, 8), torch.randn(4, 8)  # (T_q, hs), (T_k, hs), (T_k, hs)
m_row = torch.tensor(float("-inf"))  # текущий максимум запроса, который видел только -inf
print("exp(-inf - (-inf)) =", torch.exp(m_row - m_row).item())
out, lse = tiled_attention(q9, k4, v4, is_causal=True, block_size=4, return_lse=True)
print("строки 0..4 целиком нули:", bool((out[:5] == 0).all()), " lse:", lse[:5].tolist())
print("есть NaN:", bool(out.isnan().any()))

# %% [markdown]
# ## bfloat16: вычисления во float32
#
# Для входов в bfloat16 (и float16) каждая плитка считается во float32, и только выход округляется
# обратно. Ошибка относительно эталона во float64 не превышает половины единицы последнего разряда
# bfloat16; явный softmax, где каждый шаг идёт в bfloat16, ошибается сильнее.

# %%
qb, kb, vb = torch.randn(3, 1, 2, 64, 32, dtype=torch.bfloat16).unbind(0)  # (B, H, T, hs) каждый
reference = F.scaled_dot_product_attention(qb.double(), kb.double(), vb.double(), is_causal=True)
out = tiled_attention(qb, kb, vb, is_causal=True, block_size=16)
eps = torch.finfo(torch.bfloat16).eps
within = bool(((out.double() - reference).abs() <= 1e-5 + eps / 2 * reference.abs()).all())
s_b = (qb @ kb.transpose(-2, -1) / math.sqrt(32)).masked_fill(
    ~torch.ones(64, 64, dtype=torch.bool).tril(), float("-inf")
)
explicit = s_b.softmax(dim=-1) @ vb  # (B, H, T, hs), каждый шаг в bfloat16
print("dtype:", out.dtype, "| в пределах eps/2 от эталона во float64:", within)
print(
    "у явного пути в bfloat16 ошибка больше:",
    bool((explicit.double() - reference).abs().max() > (out.double() - reference).abs().max()),
)

# %% [markdown]
# ## Память: $T^2$ против $T$
#
# Пиковую память измеряет профилировщик PyTorch: он записывает каждое выделение и каждое
# освобождение памяти под тензоры; если проиграть их по порядку, получится наибольший объём памяти,
# занятый одновременно во время вызова. (`tracemalloc` ничего бы не увидел: память под тензоры
# выделяет не Python.) Размеры выделений не зависят от машины, поэтому эти числа везде одинаковы.

# %%
import contextlib
import functools
import os

from torch.profiler import ProfilerActivity, profile


def explicit_attention(q, k, v, causal):
    """softmax(QKᵀ / √hs)V, где матрицы (T, T) выписаны явно."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, T, T)
    return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1) @ v  # (B, H, T, hs)


@contextlib.contextmanager
def quiet_stderr():
    """Профилировщик пишет в stderr на уровне C две строки журнала с отметкой времени: прячем их."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def peak_mib(call) -> float:
    """Пик памяти под тензоры, занятой одновременно во время call(), в МиБ."""
    with (
        quiet_stderr(),
        torch.no_grad(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        call()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    current = peak = 0
    for event in events:
        current += event.nbytes()  # отрицательно при освобождении
        peak = max(peak, current)
    return peak / 2**20


# %% [markdown]
# Одна последовательность, одна голова размера 64, float32, каузальная маска: явный `softmax(QKᵀ)V`,
# записанный так, как его считает явный путь пакета, против `tiled_attention` с блоками по 64.

# %%
sizes, explicit_mib, tiled_mib = [256, 512, 1024, 2048], [], []
for n in sizes:
    qm, km, vm = torch.randn(3, 1, 1, n, 64).unbind(0)  # (B, H, T, hs) каждый
    causal = torch.ones(n, n, dtype=torch.bool).tril()  # (T, T)
    explicit_mib.append(peak_mib(functools.partial(explicit_attention, qm, km, vm, causal)))
    tiled_mib.append(peak_mib(functools.partial(tiled_attention, qm, km, vm, is_causal=True, block_size=64)))
    print(
        f"T = {n:4d}: явный {explicit_mib[-1]:6.2f} МиБ, по плиткам {tiled_mib[-1]:.2f} МиБ, выход {n * 64 * 4 / 2**20:.2f} МиБ"
    )
grow_explicit = [b / a for a, b in zip(explicit_mib, explicit_mib[1:])]
grow_tiled = [b / a for a, b in zip(tiled_mib, tiled_mib[1:])]
print(
    "T удвоили: явный x",
    [round(g, 2) for g in grow_explicit],
    " по плиткам x",
    [round(g, 2) for g in grow_tiled],
)

# %%
fig, ax = plt.subplots(figsize=(4.4, 3.3))
ax.plot(sizes, explicit_mib, "o-", label="softmax(QKᵀ)V")
ax.plot(sizes, tiled_mib, "s-", label="tiled_attention, блок 64")
ax.set(xscale="log", yscale="log", xlabel="T (длина последовательности)", ylabel="пик памяти, МиБ")
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.set_xticks([], minor=True)
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Явный путь держит одновременно три матрицы `(T, T)` во float32 (оценки, оценки под маской и веса):
# $12\,T^2$ байт, вчетверо больше при каждом удвоении. Путь по плиткам держит выход ($64\,T$ чисел)
# и несколько плиток: при удвоении не больше чем вдвое больше. На странице замеров то же самое
# измерено до $T = 8192$, и рядом — SDPA.

# %% [markdown]
# ## Время: почему настоящие ядра пишут не на Python
#
# Цикл по плиткам выполняет ту же арифметику, что и явный путь, но множеством мелких кусков: каждая
# плитка — полтора десятка отдельных вызовов PyTorch, у каждого свои накладные расходы на диспетчеризацию
# и свой проход через память. Настоящие ядра (FlashAttention на CUDA или на Triton) обрабатывают
# плитку за один слитный шаг в быстрой памяти на самом кристалле, а flash-ядро SDPA для CPU в PyTorch —
# это цикл на C++ по блокам запросов и ключей с тем же онлайн-softmax, параллельно в нескольких потоках.

# %%
import time

torch.set_num_threads(1)  # один поток для обоих, как в замерах: никто не ждёт потоков
qt, kt, vt = torch.randn(3, 1, 1, 2048, 64).unbind(0)  # (B, H, T, hs) каждый
n_blocks = 2048 // 64
n_tiles = n_blocks * (n_blocks + 1) // 2  # каузальная маска: блок запросов i обходит блоки ключей 0..i
with torch.no_grad():
    timings = {}
    for name, call in (
        ("sdpa", lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=True)),
        ("tiled", lambda: tiled_attention(qt, kt, vt, is_causal=True, block_size=64)),
    ):
        call()  # прогрев
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            call()
            runs.append(time.perf_counter() - start)
        timings[name] = min(runs)  # самый быстрый запуск: другие процессы время только добавляют
print("плиток обойдено при T = 2048, блоки по 64:", n_tiles)
print("SDPA хотя бы вдвое быстрее цикла на Python:", timings["tiled"] > 2 * timings["sdpa"])

# %% [markdown]
# ## Назад к главе 3: быстрый путь
#
# Когда веса не запрошены, `MultiHeadAttention` вызывает `F.scaled_dot_product_attention(is_causal=True)`.
# Если заменить этот вызов на `tiled_attention`, выход модуля не изменится. Совпадение выходов
# показывает, что обе функции считают одно и то же, но не то, какое ядро запустил SDPA: он выбирает его
# по устройству, типу данных и входам (flash-ядро, ядро с экономией памяти или обычную формулу).

# %%
from simple_llm import MultiHeadAttention

_ = torch.manual_seed(0)
mha = MultiHeadAttention(num_heads=4, emb_size=32, head_size=8, max_seq_len=16, dropout=0.0).double().eval()
x = torch.randn(2, 11, 32, dtype=torch.float64)  # (B, T, C)
qh, kh, vh = mha.qkv(x).view(2, 11, 3, 4, 8).permute(2, 0, 3, 1, 4)  # (B, H, T, hs) каждый
heads = tiled_attention(qh, kh, vh, is_causal=True, block_size=4)  # (B, H, T, hs)
merged = heads.transpose(1, 2).reshape(2, 11, 32)  # (B, T, H*hs)
same = torch.allclose(mha.proj(merged), mha(x), rtol=0, atol=1e-10)
assert same
print("MultiHeadAttention с tiled_attention внутри == mha(x):", same, tuple(merged.shape))

# %% [markdown]
# ## Упражнение
#
# Напишите `tiled_attention(q, k, v, block_size)`: внимание без маски с онлайн-softmax по
# блокам ключей, q `(B, H, T_q, hs)`, k и v `(B, H, T_k, hs)`, результат `(B, H, T_q, hs)`.
# Проверка отличает забытый пересчёт накопленных сумм и NaN на больших оценках без вычитания
# максимума.
#
# Решение свёрнуто в конце [главы](../../chapters/12-tiled-attention/#exercise): сначала напишите своё.


# %%
def tiled_attention(q, k, v, block_size):
    # ваш код здесь
    raise NotImplementedError


# %%
from simple_llm.practice import check_tiled_attention

# на заглушке: «ещё не написана»
print(check_tiled_attention(tiled_attention, lang="ru"))

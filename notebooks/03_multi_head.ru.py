# %% [markdown]
# # Многоголовое внимание: блокнот
#
# Собираем `MultiHeadAttention` по шагам из частей `simple_llm`, называем форму тензора после
# каждого шага и проверяем, что ручная сборка совпадает с модулем пакета и с
# `torch.nn.MultiheadAttention`. Текст главы: [Многоголовое внимание](../../chapters/03-multi-head/).
#
# Обозначения форм: `B` — батч, `T` — длина последовательности, `C` — размер эмбеддинга
# (`emb_size`), `H` — число голов (`num_heads`), `hs` — размер головы (`head_size`).

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
# ## Модуль и вход
#
# Маленькие размеры, чтобы всё было видно: 2 последовательности по 6 токенов, $C = 32$,
# 4 головы по 8. Вычисления в float64: так сравнения можно делать с жёстким допуском.

# %%
import math

import torch
from IPython.display import Markdown

from simple_llm import MultiHeadAttention, plot_attention_heads

# %matplotlib inline
_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 6, 32, 4, 8


def same(a, b):
    """assert_close с допуском этого блокнота, затем то же сравнение как булево значение для печати."""
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    return torch.allclose(a, b, rtol=1e-12, atol=1e-12)


mha = MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=16, dropout=0.0).double().eval()
x = torch.randn(B, T, C, dtype=torch.float64)
shapes = [("x", tuple(x.shape), "(B, T, C)")]
print(tuple(x.shape))  # (B, T, C)

# %% [markdown]
# ## Шаг 1. Сначала проекция
#
# Одна матрица `qkv` проецирует каждый токен сразу в запросы, ключи и значения всех голов:
# $C \to 3H\,\mathrm{hs}$. Проекция идёт **до** разделения на головы.

# %%
qkv = mha.qkv(x)  # (B, T, 3*H*hs)
shapes.append(("qkv = mha.qkv(x)", tuple(qkv.shape), "(B, T, 3·H·hs)"))
print(tuple(qkv.shape))  # (B, T, 3*H*hs)

# %% [markdown]
# ## Шаг 2. Потом разделение на головы
#
# `view` режет последнюю ось на `3 × H × hs`, `permute` выносит ось голов вперёд, чтобы каждая
# голова работала со своей матрицей `(T, hs)`.

# %%
qkv5 = qkv.view(B, T, 3, H, hs)  # (B, T, 3, H, hs)
q, k, v = qkv5.permute(2, 0, 3, 1, 4)  # (B, H, T, hs) каждый
shapes.append(("view(B, T, 3, H, hs)", tuple(qkv5.shape), "(B, T, 3, H, hs)"))
shapes.append(("q, k, v = permute(2, 0, 3, 1, 4)", tuple(q.shape), "(B, H, T, hs)"))
print(tuple(q.shape), tuple(k.shape), tuple(v.shape))  # (B, H, T, hs), трижды

# %% [markdown]
# ## Шаг 3. Оценки, каузальная маска, softmax
#
# Оценки внимания $QK^\top/\sqrt{\mathrm{hs}}$ для всех голов сразу. Каузальная маска запрещает смотреть
# в будущее; softmax берётся по оси ключей (последней), поэтому каждая строка весов в сумме даёт 1.

# %%
scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
causal = torch.tril(torch.ones(T, T, dtype=torch.bool))  # (T, T)
weights = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
shapes.append(("weights = softmax(q·kᵀ/√hs)", tuple(weights.shape), "(B, H, T, T)"))
print("строки весов в сумме дают 1:", same(weights.sum(dim=-1), torch.ones(B, H, T, dtype=torch.float64)))

# %% [markdown]
# ## Шаг 4. Взвешенные значения и склейка голов
#
# `weights @ v` даёт выход каждой головы. Чтобы склеить головы, ось голов возвращается на место
# (`transpose`), и только потом `reshape` сливает `H × hs` в одну ось. `view` без `transpose`
# перемешал бы головы и позиции: эта ошибка разобрана в главе 7.

# %%
y = weights @ v  # (B, H, T, hs)
merged = y.transpose(1, 2).reshape(B, T, H * hs)  # (B, T, H*hs)
out = mha.proj(merged)  # (B, T, C)
shapes += [
    ("y = weights @ v", tuple(y.shape), "(B, H, T, hs)"),
    ("transpose(1, 2).reshape(B, T, H·hs)", tuple(merged.shape), "(B, T, H·hs)"),
    ("out = mha.proj(...)", tuple(out.shape), "(B, T, C)"),
]
print(tuple(out.shape))  # (B, T, C)

# %% [markdown]
# ## Склейка голов: почему сначала `transpose`
#
# Тензор `y` формы `(B, H, T, hs)` лежит в памяти голова за головой: все $T\,\mathrm{hs}$ чисел головы 0,
# потом головы 1 и так далее. `view(B, T, H·hs)` ничего не переставляет, а лишь нарезает эту
# память на строки по `H·hs` чисел. Поэтому в строку 0 «склеенного» тензора попадают несколько
# позиций головы 0, а не позиция 0 каждой головы. `transpose(1, 2)` ставит позиции вперёд, и `reshape`
# копирует числа в нужном порядке. Подпишем каждое число маленького `y` ($H = 3$, $T = 4$, $\mathrm{hs} = 2$)
# его головой и позицией и посмотрим на оба результата.

# %%
import matplotlib.pyplot as plt

nH, nT, nhs = 3, 4, 2
head_of = torch.arange(nH).view(1, nH, 1, 1).expand(1, nH, nT, nhs)  # (B, H, T, hs)
pos_of = torch.arange(nT).view(1, 1, nT, 1).expand(1, nH, nT, nhs)  # (B, H, T, hs)
label = (10 * head_of + pos_of).contiguous()  # (B, H, T, hs): 10·голова + позиция
right = label.transpose(1, 2).reshape(1, nT, nH * nhs)[0]  # (T, H*hs)
wrong = label.view(1, nT, nH * nhs)[0]  # (T, H*hs): порядок памяти, головы и позиции вперемешку
for name, merged in (("transpose + reshape, строка 0:", right), ("view без transpose, строка 0:", wrong)):
    print(name, [f"h{v // 10}t{v % 10}" for v in merged[0].tolist()])
assert torch.equal(right // 10, torch.arange(nH).repeat_interleave(nhs).expand(nT, -1))  # столбцы по головам
assert not torch.equal(wrong, right)

colours = ["#a6cee3", "#fdbf6f", "#b2df8a"]  # головы 0, 1, 2
fig, axes = plt.subplots(2, 1, figsize=(3.9, 4.6), layout="constrained")
for ax, merged, title in zip(
    axes,
    (right, wrong),
    (
        "transpose(1, 2).reshape: строка t — позиция t всех голов",
        "view без transpose: строки смешивают позиции",
    ),
):
    for t in range(nT):
        for c in range(nH * nhs):
            h, pos = divmod(merged[t, c].item(), 10)
            ax.add_patch(plt.Rectangle((c, t), 1, 1, facecolor=colours[h], edgecolor="white", linewidth=2))
            ax.text(c + 0.5, t + 0.5, f"h{h}\nt{pos}", ha="center", va="center", fontsize=10)
    ax.set_xlim(0, nH * nhs)
    ax.set_ylim(nT, 0)
    ax.set_xticks(
        [nhs * h + nhs / 2 for h in range(nH)] if merged is right else [],
        [f"голова {h}" for h in range(nH)] if merged is right else [],
    )
    ax.set_yticks([t + 0.5 for t in range(nT)], [f"строка {t}" for t in range(nT)])
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    for side in ax.spines.values():
        side.set_visible(False)
plt.show()

# %% [markdown]
# Цвет — голова, `t` — позиция. После `transpose` + `reshape` каждая строка — одна позиция, а
# столбцы головы h одни и те же во всех строках: `proj` может выучить, что значат столбцы каждой
# головы. После голого `view` в строке 0 оказываются позиции 0, 1 и 2 головы 0 и ни одной
# другой головы: выход позиции 0 теперь зависит от токенов 1 и 2, будущее просачивается в
# прошлое, а форма всё равно `(B, T, H·hs)`, так что ничего не падает. В главе 7 эту ошибку
# ловит проверка каузальности.

# %% [markdown]
# ## Таблица форм
#
# Таблица собрана из настоящих тензоров этого блокнота, а не набрана руками.

# %%
rows = [f"| `{step}` | `{shape}` | {legend} |" for step, shape, legend in shapes]
Markdown("\n".join(["| шаг | форма | обозначения |", "| --- | --- | --- |", *rows]))

# %% [markdown]
# ## Ручная сборка равна модулю пакета
#
# Быстрый путь модуля считает то же самое через `F.scaled_dot_product_attention`.

# %%
print(
    "ручная сборка == MultiHeadAttention:", same(out, mha(x)) and same(weights, mha.get_attention_weights(x))
)

# %% [markdown]
# ## Когда быстрый путь не создаёт матрицу `(T, T)`
#
# `F.scaled_dot_product_attention` выбирает ядро во время выполнения. Слитное (fused) ядро
# flash attention проходит ключи блоками и никогда не хранит матрицу `(T, T)` целиком; запасной
# математический путь (math) считает оценки, softmax и веса обычными тензорами, каждый формы
# `(B, H, T, T)`. Какое ядро сработает, зависит от устройства, типа данных, маски и dropout.
# Спросим у профилировщика, какое ядро отработало, и сравним пиковую память вызова с размером
# одного тензора `(B, H, T, T)` при $T = 2048$ и 4 головах.

# %%
import contextlib
import itertools
import os

import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile


@contextlib.contextmanager
def quiet_stderr():
    """Библиотека профилировщика пишет в stderr строки с временем запуска и остановки: скроем их."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def kernel_and_peak(q, k, v, **kwargs):
    """Ядро SDPA, которое отработало, и пик памяти его тензоров в байтах."""
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        F.scaled_dot_product_attention(q, k, v, **kwargs)
    kernel = next(e.key for e in prof.key_averages() if e.key.startswith("aten::_scaled_dot_product"))
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    return kernel.removeprefix("aten::_scaled_dot_product_"), max(
        itertools.accumulate(e.nbytes() for e in events)
    )


_ = torch.manual_seed(0)
nT = 2048
allowed = torch.ones(nT, nT, dtype=torch.bool).tril()  # (T, T): True — можно смотреть
print(f"{'тип, аргументы':30} | {'ядро':24} | {'пик >= один (B, H, T, T)'}")
for dtype in (torch.float32, torch.bfloat16, torch.float64):
    q, k, v = (torch.randn(1, 4, nT, 16, dtype=dtype) for _ in range(3))  # (B, H, T, hs) каждый
    weights_bytes = q.numel() // 16 * nT * q.element_size()  # один тензор (B, H, T, T)
    cases = {"is_causal=True": {"is_causal": True}}
    if dtype == torch.float32:
        cases["attn_mask=(T, T) bool"] = {"attn_mask": allowed}
        cases["dropout_p=0.1"] = {"is_causal": True, "dropout_p": 0.1}
    for case, kwargs in cases.items():
        kernel, peak = kernel_and_peak(q, k, v, **kwargs)
        print(f"{str(dtype)[6:] + ', ' + case:30} | {kernel:24} | {peak >= weights_bytes}")
with sdpa_kernel(SDPBackend.MATH):  # слитное ядро отключено вручную
    kernel, peak = kernel_and_peak(q, k, v, is_causal=True)
print(f"{'float64, MATH вручную':30} | {kernel:24} | {peak >= weights_bytes}")

# %% [markdown]
# На CPU с этой версией PyTorch ядро flash работает для float32, bfloat16 и float64, с маской и
# без; в математический путь, который держит тензоры `(B, H, T, T)`, вызов уходит только из-за
# dropout внутри SDPA (`dropout_p > 0`) или если ядро отключить вручную. Маска ядро не меняет, но
# она сама — матрица `(T, T)` (ядро переводит её в числа с плавающей точкой): память становится
# $O(T^2)$, правда, это одна копия на все головы, а не по матрице на голову. Наш модуль никогда не
# передаёт `dropout_p` (его dropout стоит после выходной проекции), поэтому без маски его память
# растёт линейно по `T`. На GPU правила другие (там ядро flash принимает только float16 и
# bfloat16, остальное берут другие ядра): спросите профилировщик на своей машине.

# %% [markdown]
# ## Головы по отдельности и общая проекция: одни и те же параметры
#
# `mha.heads` (в исходном проекте `mha._heads`, это имя тоже работает) — представления
# голов: каждая читает свои строки `mha.qkv.weight`, копий весов нет. Выходы голов, склеенные
# и пропущенные через `proj`, дают тот же результат. А потеря, посчитанная по одной голове 0,
# отдаёт градиент строкам `mha.qkv.weight`, принадлежащим голове 0 (её строкам запросов, ключей и
# значений), и никаким другим.

# %%
per_head = torch.cat([head(x) for head in mha.heads], dim=-1)  # (B, T, H*hs)
w_q0 = mha.heads[0].weights[0]  # (hs, C)
shares = w_q0.untyped_storage().data_ptr() == mha.qkv.weight.untyped_storage().data_ptr()
print("головы по отдельности == общий путь:", same(mha.proj(per_head), mha(x)))
print("веса головы 0 лежат в mha.qkv.weight:", shares)
mha.heads[0](x).pow(2).sum().backward()  # потеря от одной головы 0
reached = mha.qkv.weight.grad.abs().sum(dim=-1).view(3, H, hs).sum(dim=-1) > 0  # (3, H): q, k, v × головы
print("строки mha.qkv.weight с градиентом от головы 0 (q, k, v по головам):", reached.int().tolist())
mha.zero_grad()

# %% [markdown]
# ## Равенство с `torch.nn.MultiheadAttention`
#
# `to_torch()` переносит наши веса в модуль PyTorch, `from_torch()` строит наш модуль из
# модуля PyTorch. Каждое направление сверяем с тем модулем, с которого начали: `mha` — с его
# копией `mha.to_torch()`, а только что созданный `nn.MultiheadAttention` (исходный) — с модулем,
# который из него построил `from_torch`; сравниваем выходы и веса каждой головы. У PyTorch маска
# с обратной полярностью: `True` значит «запрещено».

# %%
torch_mha = mha.to_torch()
future = ~causal  # True — закрыто, соглашение PyTorch
theirs, their_weights = torch_mha(
    x, x, x, attn_mask=future, average_attn_weights=False
)  # (B, T, C), (B, H, T, T)
to_torch_equal = same(theirs, mha(x)) and same(their_weights, mha.get_attention_weights(x))

source = torch.nn.MultiheadAttention(C, H, batch_first=True).double().eval()  # инициализация PyTorch
loaded = MultiHeadAttention.from_torch(source, max_seq_len=16).eval()
theirs, their_weights = source(
    x, x, x, attn_mask=future, average_attn_weights=False
)  # (B, T, C), (B, H, T, T)
ours, our_weights = loaded(x, return_weights=True)  # (B, T, C), (B, H, T, T)
from_torch_equal = (
    same(ours, theirs) and same(loaded(x), theirs) and same(our_weights, their_weights)
)  # и быстрый путь тоже
print("to_torch и from_torch: выходы и веса равны исходному модулю:", to_torch_equal and from_torch_equal)

# %% [markdown]
# ## Число параметров
#
# $4C^2 + 4C$: три проекции $C \to C$ и выходная проекция $C \to C$, у каждой матрица $C \times C$ и смещение длины $C$.

# %%
n_params = sum(p.numel() for p in mha.parameters())
assert n_params == 4 * C**2 + 4 * C
print(f"C = {C}: параметров {n_params} = 4·{C}² + 4·{C}")

# %% [markdown]
# ## Стоимость: одна и та же при любом числе голов
#
# Считаем умножения со сложением (каждое — 2 FLOPs): проекции $2 \cdot T \cdot C \cdot 4C$, оценки и взвешивание
# $2 \cdot 2 \cdot H T^2 \mathrm{hs}$. При $H\,\mathrm{hs} = C$ второе слагаемое равно $4T^2C$ при любом числе голов.


# %%
def flops(T, C, H):
    hs = C // H
    return {"проекции": 2 * T * C * 4 * C, "внимание": 2 * 2 * H * T * T * hs}


for heads in (1, 2, 4, 8):
    print(f"H = {heads}:", flops(T=256, C=512, H=heads))
assert len({flops(256, 512, h)["внимание"] for h in (1, 2, 4, 8)}) == 1
print("рост T вдвое: внимание ×", flops(512, 512, 8)["внимание"] // flops(256, 512, 8)["внимание"])

# %% [markdown]
# Умножений столько же, но работа не та же. У каждой головы своя матрица весов `(T, T)`: тензор
# `(B, H, T, T)`, экспоненты softmax и наложение маски растут вместе с `H`. А вес маленькой
# головы дёшев ($4\,\mathrm{hs}$ FLOPs на оценку и его долю в выходе), поэтому всё большая доля работы
# приходится на запись, softmax и чтение весов, а узкие матричные умножения обычно работают хуже
# одного широкого. Для $B = 1$, $T = 256$, $C = 512$:

# %%
print("  H |  hs | веса float32, МиБ | exp() в softmax | FLOPs на вес")
for heads in (1, 2, 4, 8):
    n = heads * 256 * 256  # элементов в весах (B=1, H, T, T)
    per_weight = flops(256, 512, heads)["внимание"] // n
    print(f"{heads:>3} | {512 // heads:>3} | {n * 4 / 2**20:24.2f} | {n:>16} | {per_weight:>16}")

# %% [markdown]
# ## Веса голов на рисунке
#
# Веса каждой головы — так, как их получали в исходном проекте:
# `[head.get_attention_weights(x) for head in mha.heads]`. Модуль не обучен, а «токены» — это
# случайные векторы `x`, слова служат только подписями, поэтому значения смысла не несут: как
# головы специализируются после обучения, показано в главе 5. В строке 0 у каждой головы вес 1,0
# (первый токен видит только себя); на шкале от 0 до 1 остальные строки были бы тёмными, а головы
# казались бы одинаковыми. Поэтому общая шкала цвета обрезана по самому большому весу вне
# строки 0 (`vmax=`), а строка 0 закрашена верхним цветом.

# %%
with torch.no_grad():
    per_head_weights = [head.get_attention_weights(x) for head in mha.heads]  # H тензоров (B, T, T)
tokens = ["кошка", "села", "на", "тёплый", "коврик", "."]
print(
    "веса последнего запроса по головам:", [[round(float(v), 2) for v in w[0, -1]] for w in per_head_weights]
)
vmax = max(w[0, 1:].max().item() for w in per_head_weights)  # самый большой вес вне строки 0
print("самый большой вес вне строки 0:", round(vmax, 2))
plot_attention_heads(
    per_head_weights, tokens=tokens, lang="ru", title="Веса внимания необученного модуля", vmax=vmax
)

# %% [markdown]
# ## Упражнение
#
# Напишите `multi_head_attention(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=True)` одной
# функцией: x `(B, T, C)`, веса в соглашении `nn.Linear`, строки `w_qkv` идут блоками
# `[Q | K | V]`, голова h занимает строки `h*hs:(h+1)*hs` каждого блока, `w_o` `(C, C)`;
# результат `(B, T, C)`. Проверка отличает, например, разбиение на головы до проекции от
# `view` без `transpose` и от пропущенной выходной проекции.
#
# Решение свёрнуто в конце [главы](../../chapters/03-multi-head/#exercise): сначала напишите своё.


# %%
def multi_head_attention(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=True):
    # ваш код здесь
    raise NotImplementedError


# %%
from simple_llm.practice import check_multi_head_attention

# на заглушке: «ещё не написана»
print(check_multi_head_attention(multi_head_attention, lang="ru"))

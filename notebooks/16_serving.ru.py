# %% [markdown]
# # Обслуживание модели: блокнот
#
# Блокнот главы [«Обслуживание модели»](../../chapters/16-serving/). По формам Llama-3-8B посчитаем
# FLOP и байты префилла и шага декодирования, отметим их на модели roofline для NVIDIA H100, разобьём длинный
# кэш на части и сольём внимание по ним через `simple_llm.merge_attention`, а потом декодируем
# несколько последовательностей из одного `simple_llm.PagedKVCache`.
#
# Легенда форм (та же, что в пакете): **B** — батч, **T** — длина последовательности, **H** — число
# голов, **H_kv** — число голов ключей и значений, **hs** — размер головы, **S** — число позиций в кэше.

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
# ## FLOP и байты на токен
#
# Llama-3-8B: $C = 4096$, 32 слоя, $H = 32$ головы запросов, $H_{\mathrm{kv}} = 8$ голов ключей и значений
# размера $\mathrm{hs} = 128$, полносвязный слой на 14336 и словарь из 128256 токенов. Матрица из $n$
# весов стоит $2n$ FLOP на токен (умножение и сложение) и, в bfloat16, $2n$ байт, которые читаются
# один раз за прямой проход, сколько бы токенов этот проход ни делили.

# %%
# %matplotlib inline
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import simple_llm

C, L, H, H_kv, hs, F_ff, V = 4096, 32, 32, 8, 128, 14336, 128256
per_layer = C * H * hs + 2 * C * H_kv * hs + H * hs * C + 3 * C * F_ff  # q, k, v, o и слой SwiGLU
weights = L * per_layer + C * V  # выходная голова; эмбеддинг — выборка строк, а не произведение
kv_bytes_per_token = 2 * L * H_kv * hs * 2  # ключи и значения всех слоёв, bfloat16
print(f"весов в произведениях: {weights / 1e9:.2f} млрд = {2 * weights / 1e9:.1f} ГБ в bfloat16")
print(f"KV-кэш на токен: {kv_bytes_per_token / 1024:.0f} КиБ")

# %% [markdown]
# Один прямой проход по `new` новым токенам в каждой из `batch` последовательностей, перед которыми
# уже `context` позиций: произведения стоят $2 \cdot \text{число весов}$ FLOP на токен, внимание —
# $4 L H \mathrm{hs}$ на каждую видимую пару запроса и ключа ($QK^\top$ и взвешенная сумма значений).
# Байты: веса один раз и весь KV-кэш каждой последовательности (прочитанный и дописанные новые
# ключи и значения). Активации не считаем: рядом с этим они малы.


# %%
def forward_cost(new: int, batch: int, context: int) -> tuple[float, float]:
    """(FLOP, байты) одного прямого прохода: `new` токенов на последовательность после `context` закэшированных."""
    pairs = new * context + new * (new + 1) / 2  # видимые пары (запрос, ключ)
    flops = batch * (2 * weights * new + 4 * L * H * hs * pairs)
    moved = 2 * weights + batch * kv_bytes_per_token * (context + new)
    return flops, moved


cases = {
    "префилл, T=4096": forward_cost(4096, 1, 0),
    "декодирование, B=1": forward_cost(1, 1, 4096),
    "декодирование, B=64": forward_cost(1, 64, 4096),
}
for name, (flops, moved) in cases.items():
    print(
        f"{name:19s} {flops / 1e12:8.3f} TFLOP {moved / 1e9:6.1f} ГБ  интенсивность {flops / moved:7.1f} FLOP/байт"
    )

# %% [markdown]
# ## Модель roofline для H100
#
# H100 SXM: 989 TFLOP/s на плотных матричных произведениях в bfloat16 и 3,35 ТБ/с пропускной
# способности HBM3 (по спецификации NVIDIA). Проход с интенсивностью $I$ FLOP/байт не может идти
# быстрее $\min(989 \cdot 10^{12},\ 3{,}35 \cdot 10^{12} \cdot I)$ FLOP/s; оба предела сходятся в
# точке излома, $989 / 3{,}35$ FLOP/байт. Левее неё проход ждёт память, правее — тензорные ядра.

# %%
peak, bandwidth = 989e12, 3.35e12  # H100 SXM: плотные FLOP/s в bf16, байт/с HBM3
ridge = peak / bandwidth
print(f"точка излома: {ridge:.0f} FLOP/байт")
for name, (flops, moved) in cases.items():
    seconds = max(flops / peak, moved / bandwidth)  # нижняя граница времени по модели roofline
    bound = "память" if moved / bandwidth > flops / peak else "вычисления"
    tokens = (4096 if name.startswith("префилл") else int(name.split("=")[1])) / seconds
    print(
        f"{name:19s} упирается в {bound:10s} не меньше {seconds * 1e3:6.2f} мс, не больше {tokens:8.0f} токенов/с"
    )

# %%
intensity = torch.logspace(-1, 4.5, 200, dtype=torch.float64)  # FLOP/байт
fig, ax = plt.subplots(figsize=(5.0, 3.4), layout="constrained")
ax.loglog(intensity, torch.clamp(bandwidth * intensity, max=peak) / 1e12, color="black")
ax.axvline(ridge, color="lightgrey", linestyle="--")
for (name, (flops, moved)), color in zip(cases.items(), ["C3", "C0", "C2"]):
    point = flops / moved
    ax.plot(point, min(peak, bandwidth * point) / 1e12, "o", color=color, label=name)
ax.set(
    xlabel="арифметическая интенсивность, FLOP/байт",
    ylabel="достижимые TFLOP/s",
    title="Модель roofline: H100 SXM, Llama-3-8B",
)
ax.legend(loc="lower right")
plt.close(fig)
fig

# %% [markdown]
# ## Декодирование с разбиением ключей
#
# Один токен запроса на последовательность и голову даёт $B \cdot H$ строк внимания; при $B = 1$ и
# $H = 32$ это 32 строки — меньше, чем 132 потоковых мультипроцессора H100. Разбиение ключей
# (Flash-Decoding) делит ещё и кэш: внимание по каждой его части считают отдельно, а потом части
# сливают по их логарифму суммы экспонент. Здесь кэш из 1000 ключей в четырёх частях разного размера.

# %%
torch.manual_seed(0)
q = torch.randn(1, 8, 1, 64, dtype=torch.float64)  # (B, H, 1, hs): один новый токен
k = torch.randn(1, 8, 1000, 64, dtype=torch.float64)  # (B, H, S, hs)
v = torch.randn(1, 8, 1000, 64, dtype=torch.float64)  # (B, H, S, hs)
bounds = [0, 100, 350, 999, 1000]  # четыре части, последняя из одного ключа
parts = [
    simple_llm.tiled_attention(q, k[..., a:b, :], v[..., a:b, :], return_lse=True)
    for a, b in zip(bounds, bounds[1:])
]
out, lse = simple_llm.merge_attention([o for o, _ in parts], [s for _, s in parts])
print("после слияния:", tuple(out.shape), "lse:", tuple(lse.shape))  # (B, H, 1, hs), (B, H, 1)
print("совпадает с SDPA по всем 1000 ключам:", torch.allclose(out, F.scaled_dot_product_attention(q, k, v)))
share = torch.stack([torch.exp(s - lse) for _, s in parts])[:, 0, 0, 0]  # (4,) голова 0
print(
    "голова 0, вес каждой части:",
    [round(w, 3) for w in share.tolist()],
    "сумма",
    round(share.sum().item(), 6),
)

# %% [markdown]
# Вес части равен $e^{\mathrm{lse}_p - \mathrm{lse}}$, её доле в знаменателе софтмакса; веса в сумме
# дают 1. У части, где замаскированы все ключи, $\mathrm{lse}_p = -\infty$ и вес 0.

# %%
causal = torch.ones(4, 6, dtype=torch.bool).tril(diagonal=2)  # (T_q, S): запрос i видит ключи до i + 2
q4 = torch.randn(1, 2, 4, 16, dtype=torch.float64)  # (B, H, T_q, hs)
k6, v6 = torch.randn(2, 1, 2, 6, 16, dtype=torch.float64).unbind(0)  # (B, H, S, hs) каждый
halves = []
for a, b in [(0, 3), (3, 6)]:
    s = q4 @ k6[..., a:b, :].transpose(-2, -1) / math.sqrt(16)  # (B, H, T_q, 3)
    s = s.masked_fill(~causal[:, a:b], -math.inf)
    p_lse = torch.logsumexp(s, dim=-1)  # (B, H, T_q), -inf там, где в части замаскированы все ключи
    halves.append((torch.softmax(s, dim=-1).nan_to_num() @ v6[..., a:b, :], p_lse))
print("запрос 0, lse второй половины:", halves[1][1][0, 0, 0].item())
merged, _ = simple_llm.merge_attention([o for o, _ in halves], [s for _, s in halves])
reference = F.scaled_dot_product_attention(q4, k6, v6, attn_mask=causal)
print("слитые каузальные половины совпадают с SDPA:", torch.allclose(merged, reference))

# %% [markdown]
# ## Страничный KV-кэш
#
# Три последовательности делят пул из 12 блоков по 4 позиции. В их промптах 7, 2 и 11 токенов;
# затем четыре шага декодирования одним батчем добавляют каждой по токену. Новый блок берётся только
# тогда, когда последний блок последовательности заполнен, поэтому блоки трёх последовательностей
# в пуле перемежаются.

# %%
torch.manual_seed(1)
cache = simple_llm.PagedKVCache(12, 4, num_kv_heads=2, head_size=16, dtype=torch.float64)
lengths = {0: 7, 1: 2, 2: 11}
for seq, T in lengths.items():
    kv = torch.randn(2, 2, T, 16, dtype=torch.float64)  # ключи и значения (H_kv, T, hs)
    cache.append([seq], [kv[0]], [kv[1]])
for _ in range(4):
    kv = torch.randn(2, 3, 2, 1, 16, dtype=torch.float64)  # ключи и значения (B, H_kv, 1, hs)
    cache.append([0, 1, 2], list(kv[0]), list(kv[1]))
for seq in cache.sequences():
    print(
        f"последовательность {seq}: {cache.length(seq):2d} позиций, таблица блоков {cache.block_table(seq)}"
    )
print(f"занято блоков: {cache.num_used_blocks} из {cache.num_blocks}, {cache.nbytes()} байт")
print(
    "непрерывный кэш на 16 позиций каждой держал бы",
    3 * 16,
    "позиций, блоки держат",
    cache.num_used_blocks * 4,
)

# %% [markdown]
# Таблица блоков переводит позиции последовательности в блоки: позиция $t$ — это ячейка $t \bmod 4$
# блока с номером $\lfloor t / 4 \rfloor$ в её таблице. На рисунке слева таблицы, справа пул; цвет
# блока — последовательность, которой он принадлежит.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(5.0, 2.4), layout="constrained", width_ratios=[1, 2])
colors = ["C0", "C1", "C2"]
owner = {b: seq for seq in cache.sequences() for b in cache.block_table(seq)}
for seq in cache.sequences():
    for i, b in enumerate(cache.block_table(seq)):
        left.add_patch(plt.Rectangle((i, -seq - 1), 1, 1, facecolor=colors[seq], edgecolor="white"))
        left.text(i + 0.5, -seq - 0.5, str(b), ha="center", va="center", color="white")
left.set(xlim=(0, 4), ylim=(-3, 0), title="таблицы блоков", xticks=[], yticks=[-0.5, -1.5, -2.5])
left.set_yticklabels([f"посл. {s}" for s in cache.sequences()])
for b in range(cache.num_blocks):
    face = colors[owner[b]] if b in owner else "whitesmoke"
    right.add_patch(plt.Rectangle((b, 0), 1, 1, facecolor=face, edgecolor="white"))
    right.text(b + 0.5, 0.5, str(b), ha="center", va="center", color="white" if b in owner else "grey")
right.set(xlim=(0, cache.num_blocks), ylim=(0, 1), title="пул блоков", xticks=[], yticks=[])
plt.close(fig)
fig

# %% [markdown]
# При декодировании ключи каждой последовательности читаются через её таблицу. Страничное внимание
# по батчу совпадает с вниманием по ключам каждой последовательности, уложенным подряд (здесь их
# собирают по таблице).

# %%
q = torch.randn(3, 4, 1, 16, dtype=torch.float64)  # (B, H, 1, hs): 4 головы запросов на 2 головы K/V
paged = cache.attend(q, [0, 1, 2])  # (B, H, 1, hs)
same = []
for b, seq in enumerate(cache.sequences()):
    keys, values = cache.gather(seq)  # (H_kv, S, hs) каждый
    contiguous = F.scaled_dot_product_attention(q[b : b + 1], keys[None], values[None], enable_gqa=True)
    same.append(torch.allclose(paged[b : b + 1], contiguous))
print("страничное внимание совпадает с непрерывным для каждой последовательности:", all(same))
cache.free(1)
print(
    f"после освобождения последовательности 1: занято блоков {cache.num_used_blocks}, свободно {cache.num_free_blocks}"
)

# %% [markdown]
# # Multi-query и grouped-query attention: блокнот
#
# Блокнот главы [«Multi-query и grouped-query attention»](../../chapters/11-gqa/). Посчитаем, во
# что обходится KV-кэш, разложим веса группового внимания, сверим его с
# `scaled_dot_product_attention(enable_gqa=True)` из PyTorch, измерим кэш и обучим одну и ту же
# маленькую модель с H, H/2 и одной головой ключей и значений.
#
# Легенда форм: **B** — батч, **T** — длина последовательности, **C** — размер эмбеддинга
# (`emb_size`), **H** — число голов запросов, **H_kv** — число голов ключей и значений (в формулах
# $H_{\mathrm{kv}}$), **hs** — размер головы, **V** — размер словаря.

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
# ## Зачем: память кэша
#
# Кэш хранит ключи и значения каждого слоя для каждого токена:
#
# $$\text{чисел на токен} = 2 \cdot L \cdot H_{\mathrm{kv}} \cdot \mathrm{hs}.$$
#
# Для Llama 2 7B ($L = 32$ слоя, $H = 32$ головы по $\mathrm{hs} = 128$) во float16 и контекста в
# 4096 токенов:

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import simple_llm
from simple_llm.attention import attend

torch.set_default_dtype(torch.float64)  # модели крошечные: float64 дёшев и точен
torch.set_num_threads(1)  # крошечным моделям хватает одного потока
L, H, hs, context = 32, 32, 128, 4096
for name, H_kv in [("MHA", 32), ("GQA", 8), ("MQA", 1)]:
    per_token = 2 * L * H_kv * hs * 2  # bytes, float16
    print(
        f"{name}: H_kv = {H_kv:2}, {per_token // 1024:4} КиБ на токен, {per_token * context / 2**30:.3f} ГиБ"
    )

# %% [markdown]
# Та же формула для каждого делителя $H = 32$: кэш уменьшается пропорционально $H_{\mathrm{kv}}$.

# %%
kv_heads = [1, 2, 4, 8, 16, 32]
kib = [2 * L * H_kv * hs * 2 // 1024 for H_kv in kv_heads]  # КиБ на токен, float16
print("КиБ на токен:", dict(zip(kv_heads, kib)))
fig, ax = plt.subplots(figsize=(4.6, 3.4), layout="constrained")
ax.plot(kv_heads, kib, "o-")
for name, H_kv in [("MQA", 1), ("GQA", 8), ("MHA", 32)]:
    ax.annotate(
        f"{name}: {kib[kv_heads.index(H_kv)]} КиБ",
        (H_kv, kib[kv_heads.index(H_kv)]),
        xytext=(6, -14),
        textcoords="offset points",
    )
ax.set(
    xscale="log",
    yscale="log",
    xlabel="H_kv (головы ключей и значений)",
    ylabel="КиБ на токен",
    title="KV-кэш, форма Llama 2 7B, float16",
)
ax.set_xticks(kv_heads, [str(h) for h in kv_heads])
ax.set_yticks(kib, [str(k) for k in kib])
ax.minorticks_off()
ax.set(xlim=(0.7, 90), ylim=(10, 800))
ax.grid(True, alpha=0.3)
plt.close(fig)
fig

# %% [markdown]
# ## Раскладка
#
# `MultiHeadAttention(..., num_kv_heads=H_kv)` хранит одну проекцию `qkv`, её строки —
# [Q от $H$ голов | K от $H_{\mathrm{kv}}$ голов | V от $H_{\mathrm{kv}}$ голов], по $\mathrm{hs}$
# строк на голову. Голова запросов $h$ читает голову ключей и значений
# $\lfloor h / (H / H_{\mathrm{kv}}) \rfloor$: головы 0, 1, 2 делят голову 0, головы 3, 4, 5 —
# голову 1.

# %%
_ = torch.manual_seed(0)
gqa = simple_llm.MultiHeadAttention(
    num_heads=6, emb_size=24, head_size=4, max_seq_len=16, dropout=0.0, num_kv_heads=2
)
print("qkv.weight:", tuple(gqa.qkv.weight.shape), "= ((6 + 2·2)·4, 24)")
print("голова ключей и значений у каждой головы запросов:", [head.kv_index for head in gqa.heads])
for H_kv in (6, 2, 1):
    module = simple_llm.MultiHeadAttention(6, 24, 4, 16, num_kv_heads=H_kv)
    print(f"H_kv = {H_kv}: {sum(p.numel() for p in module.parameters())} параметров")

# %% [markdown]
# ## Совпадает с `enable_gqa` из PyTorch
#
# Возьмём три среза `qkv` руками, отдадим внимание `F.scaled_dot_product_attention(..., enable_gqa=True)`
# и применим выходную проекцию: результат совпадает с нашим модулем. Как и обычная формула, если
# скопировать каждую голову ключей и значений на её группу через `repeat_interleave`.

# %%
x = torch.randn(2, 7, 24)  # (B, T, C)
q, k, v = gqa.qkv(x).split([6 * 4, 2 * 4, 2 * 4], dim=-1)  # (B, T, H·hs), 2 × (B, T, H_kv·hs)
q = q.view(2, 7, 6, 4).transpose(1, 2)  # (B, H, T, hs)
k = k.view(2, 7, 2, 4).transpose(1, 2)  # (B, H_kv, T, hs)
v = v.view(2, 7, 2, 4).transpose(1, 2)  # (B, H_kv, T, hs)
y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)  # (B, H, T, hs)
equal_sdpa = torch.allclose(gqa.proj(y.transpose(1, 2).reshape(2, 7, 24)), gqa(x), rtol=0, atol=1e-12)
causal = torch.ones(7, 7, dtype=torch.bool).tril()  # (T, T)
y2, _ = attend(q, k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1), causal, None)  # (B, H, T, hs)
equal_copies = torch.allclose(y2, y, rtol=0, atol=1e-12)
assert equal_sdpa and equal_copies
print("наш модуль == SDPA(enable_gqa=True):", equal_sdpa, "| == repeat_interleave:", equal_copies)

# %% [markdown]
# При $H_{\mathrm{kv}} = H$ модуль — обычное многоголовое внимание с теми же параметрами и тем же `state_dict`,
# что и раньше: старые чекпойнты загружаются без изменений.

# %%
plain = simple_llm.MultiHeadAttention(6, 24, 4, 16, dropout=0.0)
same = simple_llm.MultiHeadAttention(6, 24, 4, 16, dropout=0.0, num_kv_heads=6)
same.load_state_dict(plain.state_dict())
identical = torch.equal(same(x), plain(x))
assert identical
print("num_kv_heads = num_heads загружает обычный чекпойнт, выход тот же:", identical)

# %% [markdown]
# ## Измеряем кэш
#
# Три маленьких GPT, различающихся только $H_{\mathrm{kv}}$, читают в кэш одни и те же 32 токена;
# измеренные байты на токен совпадают с формулой $2 \cdot L \cdot H_{\mathrm{kv}} \cdot \mathrm{hs} \cdot 8$
# (здесь float64: 8 байт на число).

# %%
ids = torch.randint(0, 50, (1, 32))  # (B, T)
for H_kv in (4, 2, 1):
    model = simple_llm.GPT(50, 32, 32, 4, 8, 2, dropout=0.0, num_kv_heads=H_kv, positions="rope").eval()
    cache = model.new_cache()
    model(ids, cache)
    measured = sum(c.nbytes() for c in cache) // 32
    print(f"H_kv = {H_kv}: ключи кэша {tuple(cache[0].keys.shape)}, {measured} байт на токен")
    assert measured == 2 * 2 * H_kv * 8 * 8

# %% [markdown]
# ## Что теряется
#
# Меньше голов ключей и значений — меньше способов смотреть в прошлое. Небольшая проверка: в каждой
# позиции $t \ge 5$ модель называет четыре прежних токена, $x_{t-1}$, $x_{t-2}$, $x_{t-3}$ и $x_{t-5}$;
# $H = 4$ головы запросов, вращательные позиции и $H_{\mathrm{kv}} = 4$, 2 или 1; 100 шагов Adam, по три
# запуска с разными начальными значениями генератора на вариант.

# %%
V, T, C, H, hs = 8, 12, 32, 4, 8
OFFSETS = (1, 2, 3, 5)
K = max(OFFSETS)
data = torch.Generator().manual_seed(0)
x_train = torch.randint(0, V, (128, T), generator=data)  # (B, T)
x_test = torch.randint(0, V, (256, T), generator=data)  # (B, T)


def targets(x):
    return torch.stack([x.roll(k, dims=1) for k in OFFSETS], dim=-1)  # (B, T, 4): x[t − k]


class Tiny(nn.Module):
    def __init__(self, H_kv):
        super().__init__()
        self.tok = nn.Embedding(V, C)  # токен -> (C,)
        self.attn = simple_llm.MultiHeadAttention(H, C, hs, T, dropout=0.0, num_kv_heads=H_kv, rope=True)
        self.out = nn.Linear(C, len(OFFSETS) * V)

    def forward(self, x):
        h = self.tok(x)  # (B, T, C)
        h = h + self.attn(h)  # (B, T, C): остаточная связь
        return self.out(h).view(x.size(0), x.size(1), len(OFFSETS), V)  # (B, T, 4, V)


def accuracy(H_kv, seed):
    _ = torch.manual_seed(seed)
    model = Tiny(H_kv)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    y = targets(x_train)[:, K:].reshape(-1)  # (B·(T−5)·4,)
    for _ in range(100):
        loss = F.cross_entropy(model(x_train)[:, K:].reshape(-1, V), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        pred = model(x_test).argmax(dim=-1)  # (B, T, 4)
    return (pred[:, K:] == targets(x_test)[:, K:]).double().mean().item()


results = {H_kv: [accuracy(H_kv, seed) for seed in range(3)] for H_kv in (4, 2, 1)}
for H_kv, accs in results.items():
    print(
        f"H_kv = {H_kv}: точность по запускам",
        [round(a, 3) for a in accs],
        "среднее",
        round(sum(accs) / 3, 3),
    )
spread = max(max(a) - min(a) for a in results.values())  # между запусками одной модели
means = [sum(a) / 3 for a in results.values()]
print(
    "наибольший разброс между запусками:",
    round(spread, 3),
    "| между средними:",
    round(max(means) - min(means), 3),
)

# %% [markdown]
# Те же точности на картинке: точка — один запуск, черта — среднее.

# %%
fig, ax = plt.subplots(figsize=(4.6, 3.2), layout="constrained")
variants = [("MHA", 4), ("GQA", 2), ("MQA", 1)]
for i, (_, H_kv) in enumerate(variants):
    ax.plot([i] * 3, results[H_kv], "o", color="C0", alpha=0.7, label="один запуск" if i == 0 else None)
    ax.hlines(
        sum(results[H_kv]) / 3,
        i - 0.25,
        i + 0.25,
        color="C1",
        linewidth=2,
        label="среднее" if i == 0 else None,
    )
ax.set_xticks(range(3), [f"{name}\nH_kv = {H_kv}" for name, H_kv in variants])
ax.set(ylabel="точность", ylim=(0.5, 1.02), title="Точность каждого запуска, H = 4")
ax.legend(loc="lower right")
ax.grid(True, axis="y", alpha=0.3)
plt.close(fig)
fig

# %% [markdown]
# ## Итог
#
# Групповое внимание делит кэш в $H / H_{\mathrm{kv}}$ раз, в точности повторяет раскладку `enable_gqa`
# из PyTorch, а при $H_{\mathrm{kv}} = H$ это обычный модуль. На этой маленькой задаче начальное
# значение генератора значит больше, чем $H_{\mathrm{kv}}$; что измеряют статьи на больших моделях —
# в главе.

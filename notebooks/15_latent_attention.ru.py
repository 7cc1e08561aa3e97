# %% [markdown]
# # Многоголовое латентное внимание: блокнот
#
# Блокнот главы [«Многоголовое латентное внимание»](../../chapters/15-latent-attention/). Соберём
# латентный вектор DeepSeek-V2 с именами параметров его слоя, разберёмся, зачем вращательную часть
# держат отдельно, вложим повышающие проекции в запрос и в выход (поглощённая форма), проверяя формы
# на каждом шаге, декодируем по токену из кэша, где лежат только латентный вектор и вращательный
# ключ, и посчитаем по формам настоящих моделей, сколько байт KV-кэша приходится на токен.
#
# Легенда форм: **B** — батч, **T** — длина последовательности, **C** — размер эмбеддинга
# (`emb_size`), **H** — число голов, **S** — число закэшированных позиций (ключей); собственные
# размеры модуля: **r_q** (`q_lora_rank`), **r_kv** (`kv_lora_rank`), **d_nope**
# (`qk_nope_head_dim`), **d_rope** (`qk_rope_head_dim`), **d_v** (`v_head_dim`); в формулах
# $r_{\mathrm{kv}}$, $d_{\mathrm{nope}}$, $d_{\mathrm{rope}}$, $d_v$.

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
# ## Слой и его параметры
#
# Маленький слой: $C = 32$, $H = 4$ головы, латентный вектор запроса размера $r_q = 24$,
# латентный вектор ключей и значений размера $r_{\mathrm{kv}} = 16$, на голову
# $d_{\mathrm{nope}} = 8$ чисел без позиций и $d_{\mathrm{rope}} = 4$ вращательных, значения
# размера $d_v = 8$. Имена и формы параметров те же, что у слоя внимания DeepSeek-V2/V3, поэтому
# его `state_dict` загружается без изменений.

# %%
import math

import matplotlib.pyplot as plt
import torch

import simple_llm
from simple_llm.latent_attention import rotate_interleaved

# показывать фигуры (Figure) прямо в блокноте
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # слой крошечный: float64 дёшев и точен
torch.set_num_threads(1)
_ = torch.manual_seed(0)
C, H, r_q, r_kv, d_nope, d_rope, d_v = 32, 4, 24, 16, 8, 4, 8
mla = simple_llm.MultiHeadLatentAttention(
    C,
    H,
    32,
    q_lora_rank=r_q,
    kv_lora_rank=r_kv,
    qk_nope_head_dim=d_nope,
    qk_rope_head_dim=d_rope,
    v_head_dim=d_v,
).eval()
for name, p in mla.state_dict().items():
    print(f"{name:26} {tuple(p.shape)}")

# %% [markdown]
# ## Латентный вектор
#
# `kv_a_proj_with_mqa` переводит каждый токен в $r_{\mathrm{kv}} + d_{\mathrm{rope}}$ чисел:
# латентный вектор $c_s$ (его нормирует RMSNorm) и один вращательный ключ $k^R_s$ на все головы.
# Ключи и значения каждой головы линейны по латентному вектору:
#
# $$k^C_{s,h} = W^{UK}_h c_s, \qquad v_{s,h} = W^{UV}_h c_s.$$
#
# Поэтому в кэше достаточно хранить $c_s$ и $k^R_s$.

# %%
x = torch.randn(2, 6, C)  # (B, T, C)
latent, k_rope = mla.latents(x)  # (B, T, r_kv), (B, T, d_rope)
print("латентный вектор:", tuple(latent.shape), "| вращательный ключ:", tuple(k_rope.shape))
mla_numbers = r_kv + d_rope
mha_numbers = H * (d_nope + d_rope) + H * d_v  # ключи и значения всех голов
print(f"чисел в кэше на токен: MLA {mla_numbers}, те же головы в MHA {mha_numbers}")

# %% [markdown]
# ## Зачем вращательную часть держат отдельно
#
# Оценка головы $h$ равнялась бы ${q^C_{t,h}}^\top W^{UK}_h c_s = \big({W^{UK}_h}^\top q^C_{t,h}\big)^\top c_s$:
# повышающую проекцию ключа можно один раз перенести в запрос, и она подойдёт для всех ключей. Если же
# повернуть этот ключ RoPE, между ними встаёт поворот $R_s$ позиции ключа $s$:
#
# $$(R_t q)^\top R_s W^{UK} c_s = q^\top R_{s-t} W^{UK} c_s,$$
#
# и матрица зависит от $s$: одного свёрнутого запроса на все ключи уже не хватает. Ниже RoPE
# применён к восстановленным ключам головы 0, запрос стоит на позиции 3: свёрнутый запрос даёт
# верную оценку только для ключа на позиции 0, где поворот тождественный.

# %%
w_uk, w_ov = mla.absorbed_weights()  # (H, d_nope, r_kv), (C, H, r_kv)
c = torch.randn(4, r_kv)  # (S, r_kv): четыре латентных вектора в кэше, позиции 0..3
q = torch.randn(d_nope)  # один запрос головы 0
angles = simple_llm.RotaryEmbedding(d_nope).angles(4, 0, torch.float64)  # (S, d_nope/2)
keys = rotate_interleaved(c @ w_uk[0].T, angles)  # (S, d_nope): RoPE на восстановленных ключах
q_rot = rotate_interleaved(q[None], angles[3:])[0]  # (d_nope,): запрос на позиции 3
exact = keys @ q_rot  # (S,)
folded = c @ (w_uk[0].T @ q_rot)  # (S,): один свёрнутый запрос на все ключи
print(
    "свёрнутый запрос верен для ключа на позиции s:",
    [bool(torch.isclose(a, b)) for a, b in zip(exact, folded)],
)

# %% [markdown]
# Поэтому DeepSeek добавляет небольшую вращательную часть: у каждой головы свой вращательный запрос
# $q^R_{t,h}$ из $d_{\mathrm{rope}}$ чисел и один вращательный ключ $k^R_s$ на все головы (он
# лежит в кэше рядом с латентным вектором). Оценка — сумма двух частей:
#
# $$\operatorname{score}_{t,s,h} = \frac{{q^C_{t,h}}^\top k^C_{s,h} + {q^R_{t,h}}^\top k^R_s}{\sqrt{d_{\mathrm{nope}} + d_{\mathrm{rope}}}}.$$
#
# Поворот здесь объединяет в пары соседние координаты $(2i, 2i+1)$, а `RotaryEmbedding` из главы 9
# — координаты $i$ и $i + d/2$. Частоты те же, пары другие: после перестановки координат результаты
# совпадают.

# %%
v = torch.randn(5, d_rope)  # (T, d_rope)
rope = simple_llm.RotaryEmbedding(d_rope)
ours = rotate_interleaved(v, rope.angles(5, 0, torch.float64))  # (T, d_rope)
perm = torch.cat([torch.arange(0, d_rope, 2), torch.arange(1, d_rope, 2)])  # сначала чётные, потом нечётные
print("interleaved == rotate_half:", torch.allclose(ours, rope(v)))
print(
    "interleaved после перестановки == rotate_half переставленного:",
    torch.allclose(ours[:, perm], rope(v[:, perm])),
)

# %% [markdown]
# ## Поглощённая форма по шагам
#
# Вложим $W^{UK}_h$ ($d_{\mathrm{nope}} \times r_{\mathrm{kv}}$) в запрос, а
# $W^{UV}_h$ ($d_v \times r_{\mathrm{kv}}$) — в выходную проекцию $W^O_h$ ($C \times d_v$):
#
# $$o_t = \sum_h W^O_h \sum_s p_{t,s,h} W^{UV}_h c_s = \sum_h \big(W^O_h W^{UV}_h\big) \sum_s p_{t,s,h}\, c_s.$$
#
# Сначала оценки: запрос каждой головы переходит в латентное пространство из $r_{\mathrm{kv}}$ чисел.

# %%
q_nope, q_rope = mla.queries(x)  # (B, H, T, d_nope), (B, H, T, d_rope)
q_latent = torch.einsum("bhtn,hnr->bhtr", q_nope, w_uk)  # (B, H, T, r_kv)
scores = q_latent @ latent[:, None].transpose(-2, -1)  # (B, H, T, S)
scores = scores + q_rope @ k_rope[:, None].transpose(-2, -1)  # (B, H, T, S)
causal = torch.ones(6, 6, dtype=torch.bool).tril()  # (T, S)
weights = (
    (scores / math.sqrt(d_nope + d_rope)).masked_fill(~causal, float("-inf")).softmax(-1)
)  # (B, H, T, S)
for name, t in [("q_nope", q_nope), ("w_uk", w_uk), ("q_latent", q_latent), ("weights", weights)]:
    print(f"{name:9} {tuple(t.shape)}")

# %% [markdown]
# Затем выход: веса усредняют латентные векторы, по-прежнему $r_{\mathrm{kv}}$ чисел на голову, а
# `w_ov` ($C \times H \times r_{\mathrm{kv}}$) переводит их в $C$. Ключи и значения отдельных голов
# так и не появляются; результат совпадает с обычной формой, которая их восстанавливает.

# %%
out_latent = weights @ latent[:, None]  # (B, H, T, r_kv)
absorbed = torch.einsum("bhtr,chr->btc", out_latent, w_ov)  # (B, T, C)
for name, t in [("out_latent", out_latent), ("w_ov", w_ov), ("absorbed", absorbed)]:
    print(f"{name:10} {tuple(t.shape)}")
plain = mla(x, absorb=False)  # (B, T, C)
print("поглощённая форма == обычная:", torch.allclose(absorbed, plain, rtol=0, atol=1e-12))

# %% [markdown]
# ## Декодирование из латентного кэша
#
# `LatentCache` хранит `latent` $(B, S, r_{\mathrm{kv}})$ и `k_rope` $(B, S, d_{\mathrm{rope}})$;
# с кэшем модуль считает внимание в поглощённой форме. Префилл из 4 токенов, затем по одному токену
# — и выходы те же, что у полного каузального прохода.

# %%
cache = simple_llm.LatentCache()
steps = [mla(x[:, :4], cache=cache)] + [mla(x[:, t : t + 1], cache=cache) for t in (4, 5)]  # (B, T_i, C)
decoded = torch.cat(steps, dim=1)  # (B, T, C)
print("префилл + декодирование == полный проход:", torch.allclose(decoded, mla(x), rtol=0, atol=1e-12))
print("кэш:", tuple(cache.latent.shape), tuple(cache.k_rope.shape), f"{cache.nbytes()} байт")
print("байты = B · T · (r_kv + d_rope) · 8:", cache.nbytes() == 2 * 6 * (r_kv + d_rope) * 8)

# %% [markdown]
# ## Байты KV-кэша на токен у настоящих моделей
#
# MHA, GQA и MQA кэшируют $2 \cdot L \cdot H_{\mathrm{kv}} \cdot \mathrm{hs}$ чисел на токен, MLA —
# $L \cdot (r_{\mathrm{kv}} + d_{\mathrm{rope}})$. Формы взяты из конфигураций моделей, числа в
# bfloat16 (2 байта на число): Llama-3-8B ($L = 32$, $H_{\mathrm{kv}} = 8$, $\mathrm{hs} = 128$),
# Llama-3-70B ($L = 80$, $H_{\mathrm{kv}} = 8$, $\mathrm{hs} = 128$), DeepSeek-V2 ($L = 60$) и
# DeepSeek-V3 ($L = 61$), у обеих $r_{\mathrm{kv}} = 512$, $d_{\mathrm{rope}} = 64$ и $H = 128$.
# Последние три строки ставят MHA, GQA и MQA с $\mathrm{hs} = 128$ в форму DeepSeek-V3: 61 слой и
# 128 голов.

# %%
rows = [
    ("Llama-3-8B", "GQA (8)", {"num_layers": 32, "num_kv_heads": 8, "head_size": 128}),
    ("Llama-3-70B", "GQA (8)", {"num_layers": 80, "num_kv_heads": 8, "head_size": 128}),
    ("DeepSeek-V2", "MLA", {"num_layers": 60, "kv_lora_rank": 512, "qk_rope_head_dim": 64}),
    ("DeepSeek-V3", "MLA", {"num_layers": 61, "kv_lora_rank": 512, "qk_rope_head_dim": 64}),
    ("форма V3", "MHA (128)", {"num_layers": 61, "num_kv_heads": 128, "head_size": 128}),
    ("форма V3", "GQA (8)", {"num_layers": 61, "num_kv_heads": 8, "head_size": 128}),
    ("форма V3", "MQA (1)", {"num_layers": 61, "num_kv_heads": 1, "head_size": 128}),
]
kib = [simple_llm.kv_cache_bytes_per_token(**shape, dtype=torch.bfloat16) / 1024 for _, _, shape in rows]
print(f"{'модель':12} {'внимание':10} {'КиБ/токен':>9} {'ГиБ на 131072 токена':>22}")
for (model, kind, _), k in zip(rows, kib):
    print(f"{model:12} {kind:10} {k:9.1f} {k * 131072 / 2**20:22.2f}")
print("MLA кэширует столько же, сколько GQA с таким числом голов ключей и значений:", (512 + 64) / (2 * 128))
print("MHA / MLA в форме DeepSeek-V3:", round(kib[4] / kib[3], 1))

# %% [markdown]
# Те же числа на картинке (логарифмическая шкала).

# %%
labels = [f"{model}, {kind}" for model, kind, _ in rows]
colors = ["#c44e52" if kind == "MLA" else "#4c72b0" for _, kind, _ in rows]
fig, ax = plt.subplots(figsize=(4.6, 3.6), layout="constrained")
ax.barh(labels[::-1], kib[::-1], color=colors[::-1])
for i, k in enumerate(kib[::-1]):
    ax.annotate(f"{k:g}", (k, i), xytext=(3, 0), textcoords="offset points", va="center")
ax.set(xscale="log", xlim=(10, 30000), xlabel="КиБ на токен, bfloat16", title="KV-кэш на токен")
ax.grid(True, axis="x", alpha=0.3)
plt.close(fig)
fig

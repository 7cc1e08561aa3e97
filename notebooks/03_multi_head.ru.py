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
# Маленькие размеры, чтобы всё было видно: 2 последовательности по 6 токенов, `C = 32`,
# 4 головы по 8. Вычисления в float64: так сравнения можно делать с жёстким допуском.

# %%
import math

import torch
from IPython.display import Markdown

from simple_llm import MultiHeadAttention, plot_attention_heads

# %matplotlib inline
_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 6, 32, 4, 8
mha = MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=16, dropout=0.0).double().eval()
x = torch.randn(B, T, C, dtype=torch.float64)
shapes = [("x", tuple(x.shape), "(B, T, C)")]
print(tuple(x.shape))  # (B, T, C)

# %% [markdown]
# ## Шаг 1. Сначала проекция
#
# Одна матрица `qkv` проецирует каждый токен сразу в запросы, ключи и значения всех голов:
# `C → 3·H·hs`. Проекция идёт **до** разделения на головы.

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
q, k, v = qkv5.permute(2, 0, 3, 1, 4)  # (B, H, T, hs) each
shapes.append(("view(B, T, 3, H, hs)", tuple(qkv5.shape), "(B, T, 3, H, hs)"))
shapes.append(("q, k, v = permute(2, 0, 3, 1, 4)", tuple(q.shape), "(B, H, T, hs)"))
print(tuple(q.shape), tuple(k.shape), tuple(v.shape))  # (B, H, T, hs) x 3

# %% [markdown]
# ## Шаг 3. Оценки, каузальная маска, softmax
#
# Оценки внимания `Q·Kᵀ / √hs` для всех голов сразу. Каузальная маска запрещает смотреть
# в будущее; softmax берётся по оси ключей (последней), поэтому каждая строка весов в сумме даёт 1.

# %%
scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
causal = torch.tril(torch.ones(T, T, dtype=torch.bool))  # (T, T)
weights = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
shapes.append(("weights = softmax(q·kᵀ/√hs)", tuple(weights.shape), "(B, H, T, T)"))
torch.testing.assert_close(weights.sum(dim=-1), torch.ones(B, H, T, dtype=torch.float64))
print("строки весов в сумме дают 1:", True)

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
torch.testing.assert_close(out, mha(x), rtol=1e-12, atol=1e-12)
torch.testing.assert_close(weights, mha.get_attention_weights(x), rtol=1e-12, atol=1e-12)
print("ручная сборка == MultiHeadAttention:", True)

# %% [markdown]
# ## Головы по отдельности и общая проекция: одни и те же параметры
#
# `mha.heads` (в исходном проекте `mha._heads`, это имя тоже работает) — представления голов: каждая читает свои строки
# `mha.qkv.weight`, копий весов нет. Выходы голов, склеенные и пропущенные через `proj`, дают
# тот же результат.

# %%
per_head = torch.cat([head(x) for head in mha.heads], dim=-1)  # (B, T, H*hs)
torch.testing.assert_close(mha.proj(per_head), mha(x), rtol=1e-12, atol=1e-12)
w_q0 = mha.heads[0].weights[0]  # (hs, C)
shares = w_q0.untyped_storage().data_ptr() == mha.qkv.weight.untyped_storage().data_ptr()
print("головы по отдельности == общий путь:", True)
print("веса головы 0 лежат в mha.qkv.weight:", shares)

# %% [markdown]
# ## Равенство с `torch.nn.MultiheadAttention`
#
# `to_torch()` переносит наши веса в модуль PyTorch, `from_torch()` — обратно. У PyTorch
# маска с обратной полярностью: `True` значит «запрещено».

# %%
torch_mha = mha.to_torch()
future = ~causal  # True = masked out, the PyTorch convention
theirs, _ = torch_mha(x, x, x, attn_mask=future, need_weights=False)
torch.testing.assert_close(theirs, mha(x), rtol=1e-12, atol=1e-12)
back = MultiHeadAttention.from_torch(
    torch.nn.MultiheadAttention(C, H, batch_first=True).double(), max_seq_len=16
)
ref, _ = back.to_torch()(x, x, x, attn_mask=future, need_weights=False)
torch.testing.assert_close(back(x), ref, rtol=1e-12, atol=1e-12)
print("MultiHeadAttention == torch.nn.MultiheadAttention (в обе стороны):", True)

# %% [markdown]
# ## Число параметров: 4·C² + 4·C
#
# Три проекции `C → C` и выходная проекция `C → C`, у каждой матрица `C × C` и смещение `C`.

# %%
n_params = sum(p.numel() for p in mha.parameters())
assert n_params == 4 * C**2 + 4 * C
print(f"C = {C}: параметров {n_params} = 4·{C}² + 4·{C}")

# %% [markdown]
# ## Стоимость: O(T²·C), и число голов её не меняет
#
# Считаем умножения-сложения (FLOPs = 2 на каждое): проекции `2·T·C·4C`, оценки и взвешивание
# `2·2·H·T²·hs`. При `H·hs = C` второе слагаемое равно `4·T²·C` при любом числе голов.


# %%
def flops(T, C, H):
    hs = C // H
    return {"проекции": 2 * T * C * 4 * C, "внимание": 2 * 2 * H * T * T * hs}


for heads in (1, 2, 4, 8):
    print(f"H = {heads}:", flops(T=256, C=512, H=heads))
assert len({flops(256, 512, h)["внимание"] for h in (1, 2, 4, 8)}) == 1
print("рост T вдвое: внимание ×", flops(512, 512, 8)["внимание"] // flops(256, 512, 8)["внимание"])

# %% [markdown]
# ## Веса голов на рисунке
#
# Веса каждой головы — так, как их получали в исходном проекте:
# `[head.get_attention_weights(x) for head in mha.heads]`. Шкала цвета общая для всех голов.
# Модуль не обучен, поэтому картины похожи: как головы специализируются после обучения,
# показано в главе 5.

# %%
with torch.no_grad():
    per_head_weights = [head.get_attention_weights(x) for head in mha.heads]  # H x (B, T, T)
tokens = ["кошка", "села", "на", "тёплый", "коврик", "."]
print(
    "веса последнего запроса по головам:", [[round(float(v), 2) for v in w[0, -1]] for w in per_head_weights]
)
plot_attention_heads(per_head_weights, tokens=tokens, lang="ru", title="Веса внимания необученного модуля")

# %% [markdown]
# # Позиции: блокнот
#
# Блокнот главы [«Позиции»](../../chapters/09-positions/). Покажем, что внимание без позиций не
# различает порядок токенов перед запросом, посмотрим, как без позиций проваливается задача из
# главы 5, а затем дадим модели обучаемые, синусоидальные и вращательные позиции и проверим главное
# свойство вращательных позиций: оценки зависят только от расстояния.
#
# Легенда форм: **B** — батч, **T** — длина последовательности, **C** — размер эмбеддинга
# (`emb_size`), **H** — число голов (`num_heads`), **hs** — размер головы (`head_size`), **V** —
# размер словаря.

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
# ## Внимание не видит порядка
#
# Запрос t берёт взвешенное среднее значений ключей 0…t, а веса зависят только от содержимого
# запроса и каждого ключа. Перемешаем токены до позиции t — выход в позиции t не сдвинется: для
# внимания прошлое — это мешок токенов, а не последовательность.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import simple_llm

# показывать рисунки (Figure) прямо в блокноте
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # модели крошечные: float64 дёшев и точен
torch.set_num_threads(1)  # крошечным моделям хватает одного потока
_ = torch.manual_seed(0)
mha = simple_llm.MultiHeadAttention(num_heads=2, emb_size=8, head_size=4, max_seq_len=16, dropout=0.0)
x = torch.randn(1, 6, 8)  # (B, T, C)
shuffled = torch.cat([x[:, torch.tensor([3, 0, 4, 2, 1])], x[:, 5:]], dim=1)  # токены 0..4 перемешаны
diff_last = (mha(x)[:, -1] - mha(shuffled)[:, -1]).abs().max().item()
diff_first = (mha(x)[:, 0] - mha(shuffled)[:, 0]).abs().max().item()
print("последняя позиция не изменилась (до 1e-12):", diff_last < 1e-12)
print("первая позиция, наибольшее изменение:", round(diff_first, 2))
assert diff_last < 1e-12

# %% [markdown]
# ## Задача главы 5 без позиций
#
# Та же задача, что в главе [«Смотрим на головы»](../../chapters/05-seeing-heads/): 12 случайных
# токенов из словаря размера 8; в каждой позиции t ≥ 3 модель должна назвать x[t − 1] и x[t − 3].
# Модель та же (эмбеддинг, один слой внимания с остаточной связью, линейная голова), а способ
# узнать позиции — параметр: `"none"`, `"learned"`, `"sinusoidal"` или `"rope"`.

# %%
V, T, C, H, hs = 8, 12, 32, 2, 16
OFFSETS = (1, 3)
K = max(OFFSETS)
data = torch.Generator().manual_seed(0)
x_train = torch.randint(0, V, (512, T), generator=data)  # (B, T)
x_test = torch.randint(0, V, (256, T), generator=data)  # (B, T)


def targets(x):
    return torch.stack([x.roll(k, dims=1) for k in OFFSETS], dim=-1)  # (B, T, 2): x[t − k]


class Tiny(nn.Module):
    def __init__(self, positions):
        super().__init__()
        self.positions = positions
        self.tok = nn.Embedding(V, C)  # токен -> (C,)
        self.pos = simple_llm.LearnedPositions(T, C) if positions == "learned" else None
        self.attn = simple_llm.MultiHeadAttention(H, C, hs, T, dropout=0.0, rope=positions == "rope")
        self.out = nn.Linear(C, len(OFFSETS) * V)

    def forward(self, x):
        h = self.tok(x)  # (B, T, C)
        if self.positions == "learned":
            h = h + self.pos(x.size(1))  # (B, T, C)
        if self.positions == "sinusoidal":
            h = h + simple_llm.sinusoidal_positions(x.size(1), C)  # (B, T, C)
        h = h + self.attn(h)  # (B, T, C): остаточная связь
        return self.out(h).view(x.size(0), x.size(1), len(OFFSETS), V)  # (B, T, 2, V)


def train(positions, steps=150):
    _ = torch.manual_seed(0)
    model = Tiny(positions)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    y = targets(x_train)[:, K:].reshape(-1)  # (B·(T−3)·2,)
    for _ in range(steps):
        loss = F.cross_entropy(model(x_train)[:, K:].reshape(-1, V), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        pred = model(x_test).argmax(dim=-1)  # (B, T, 2)
    return model, (pred[:, K:] == targets(x_test)[:, K:]).double().mean(dim=(0, 1))  # (2,)


_, acc_none = train("none")
print("без позиций, точность (t − 1, t − 3):", [round(a, 2) for a in acc_none.tolist()])
assert (acc_none < 0.5).all()

# %% [markdown]
# Далеко от единицы и ненамного лучше угадывания: модель знает, какие токены были раньше, но не
# знает, какой из них стоял на шаг назад, а какой — на три.
#
# ## Обучаемые позиции
#
# Самое простое средство — как в GPT-2 и в исходном проекте: по одному обучаемому вектору на
# позицию, он прибавляется к эмбеддингу токена. `LearnedPositions(T, C)(n)` возвращает векторы
# позиций 0…n − 1, (n, C). О позициях дальше `max_seq_len` она ничего не знает.

# %%
print(tuple(simple_llm.LearnedPositions(T, C)(5).shape))  # (T, C)
model_learned, acc_learned = train("learned")
print("обучаемые позиции, точность (t − 1, t − 3):", [round(a, 2) for a in acc_learned.tolist()])
assert (acc_learned > 0.95).all()

# %% [markdown]
# ## Синусоидальные позиции
#
# Vaswani et al. (2017) прибавляют фиксированные векторы: пара координат (2i, 2i + 1) позиции p
# хранит sin(p·ωᵢ) и cos(p·ωᵢ), где ωᵢ = 10000^(−2i/C). Первые пары вращаются быстро, последние —
# медленно: у каждой позиции своё сочетание фаз, и учить ничего не нужно.

# %%
pe = simple_llm.sinusoidal_positions(64, 16)  # (T, C)
p, i = 5, 3
closed = [math.sin(p / 10000 ** (2 * i / 16)), math.cos(p / 10000 ** (2 * i / 16))]
assert torch.allclose(pe[p, 2 * i : 2 * i + 2], torch.tensor(closed))
print(tuple(pe.shape), "PE[5, 6:8] =", [round(v, 4) for v in pe[p, 6:8].tolist()])
fig, (left, right) = plt.subplots(2, 1, figsize=(5, 5), layout="constrained")
for pair in (0, 2, 4):
    left.plot(pe[:, 2 * pair].numpy(), label=f"sin, пара {pair}")
left.set(xlabel="позиция p", title="Три координаты")
left.legend(fontsize=8)
right.imshow(pe.T.numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
right.set(xlabel="позиция p", ylabel="координата", title="Все 16 координат")
plt.close(fig)
fig

# %%
_, acc_sin = train("sinusoidal")
print("синусоидальные позиции, точность (t − 1, t − 3):", [round(a, 2) for a in acc_sin.tolist()])
assert (acc_sin > 0.95).all()

# %% [markdown]
# ## Вращательные позиции
#
# RoPE (Su et al., 2021) ничего не прибавляет к токенам. Внутри внимания она поворачивает каждый
# запрос и каждый ключ на угол, пропорциональный его позиции: пара координат (i, i + hs/2)
# поворачивается на p·θᵢ, θᵢ = 10000^(−2i/hs). Мы используем соглашение `rotate_half` из GPT-NeoX
# и Hugging Face. На рисунке — одна пара координат запроса: один и тот же вектор в позициях 0…7.

# %%
rope = simple_llm.RotaryEmbedding(head_size=2, base=4.0)  # одна пара, θ = 1: радиан на позицию
q = torch.tensor([[1.0, 0.0]]).expand(8, 2)  # (T, hs): один и тот же запрос в позициях 0..7
rotated = rope(q)  # (T, hs)
print("угол в позициях 0..7:", [round(math.atan2(b, a), 2) for a, b in rotated.tolist()])
fig, ax = plt.subplots(figsize=(3.5, 3.5), layout="constrained")
for t, (a, b) in enumerate(rotated.tolist()):
    ax.annotate("", xy=(a, b), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": plt.cm.viridis(t / 7)})
    ax.text(1.12 * a, 1.12 * b, str(t), ha="center", va="center")
ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), aspect="equal", title="Запрос в позициях 0…7")
plt.close(fig)
fig

# %% [markdown]
# ## Оценки зависят только от расстояния
#
# Поворот на a, а затем транспонированный поворот на b — это поворот на a − b. Поэтому оценка
# запроса в позиции p и ключа в позиции s, rotated(q, p) · rotated(k, s), зависит только от p − s.
# Проверим: одна и та же пара векторов, ключ в позициях 0, 10 и 100, запрос на 0…3 шага позже.

# %%
rope = simple_llm.RotaryEmbedding(head_size=8)
q, k = torch.randn(2, 1, 8)  # (T, hs) каждый: один запрос, один ключ


def score(p, s):
    return (rope(q, start=p) @ rope(k, start=s).T).item()


for offset in range(4):
    row = [score(s + offset, s) for s in (0, 10, 100)]  # ключ в позициях 0, 10, 100
    print(f"сдвиг {offset}:", [round(v, 4) for v in row])
    assert max(row) - min(row) < 1e-12

# %% [markdown]
# ## Другое соглашение
#
# Код RoFormer и Meta объединяет в пары соседние координаты (2i, 2i + 1) и записывает поворот как
# умножение комплексных чисел. Это тот же поворот, только применённый к другим координатам:
# переставьте строки запросов и ключей каждой головы в порядке [0, 2, 4, …, 1, 3, 5, …] — и
# внимание совпадёт.


# %%
def rope_interleaved(x):
    hs = x.size(-1)
    theta = 10000.0 ** (-torch.arange(0, hs, 2) / hs)  # (hs/2,)
    angles = torch.arange(x.size(-2))[:, None] * theta  # (T, hs/2)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], hs // 2, 2))  # (..., T, hs/2)
    return torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles)).flatten(-2)  # (..., T, hs)


qs, ks = torch.randn(2, 5, 8)  # (T, hs) каждый
order = torch.cat([torch.arange(0, 8, 2), torch.arange(1, 8, 2)])  # [0, 2, 4, 6, 1, 3, 5, 7]
meta = rope_interleaved(qs) @ rope_interleaved(ks).T  # (T, T)
ours = rope(qs[:, order]) @ rope(ks[:, order]).T  # (T, T)
torch.testing.assert_close(ours, meta)
print("соседние пары == rotate_half после перестановки:", True)

# %% [markdown]
# ## Задача с вращательными позициями
#
# Вращательные позиции входят только в оценки, и здесь этого хватает: каждая голова учится находить
# ключ ровно на k шагов назад.

# %%
_, acc_rope = train("rope")
print("вращательные позиции, точность (t − 1, t − 3):", [round(a, 2) for a in acc_rope.tolist()])
assert (acc_rope > 0.95).all()

# %% [markdown]
# ## Итог
#
# Без позиций внимание видит прошлое как мешок токенов и проваливает задачу; обучаемые,
# синусоидальные и вращательные позиции это исправляют. С вращательными позициями оценки зависят
# только от расстояния — это понадобится в следующей главе: [генерация и KV-кэш](../../chapters/10-generation/).

# %% [markdown]
# # Позиции: блокнот
#
# Блокнот главы [«Позиции»](../../chapters/09-positions/). Покажем, что внимание без позиций не
# различает порядок токенов перед запросом, посмотрим, как без позиций проваливается задача из
# главы 5, а затем дадим модели обучаемые, синусоидальные и вращательные позиции, проверим главное
# свойство вращательных позиций (оценки зависят только от расстояния) и измерим, как с этим
# расстоянием затухает вращательная оценка.
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
# Запрос $t$ берёт взвешенное среднее значений ключей $0,\dots,t$. Оценка ключа зависит только от
# запроса и этого ключа; затем softmax нормирует оценки по всем ключам, и ни один из двух шагов не
# смотрит, где стоит ключ. Перемешаем токены до позиции $t$ — выход в позиции $t$ не сдвинется: для
# одного слоя внимания прошлое — мешок токенов, а не последовательность.

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
# Та же задача, что в главе [«Что видят головы»](../../chapters/05-seeing-heads/): 12 случайных
# токенов из словаря размера 8; в каждой позиции $t \ge 3$ модель должна назвать $x_{t-1}$ и $x_{t-3}$.
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
# позиций $0,\dots,n-1$, форма (n, C). О позициях дальше `max_seq_len` она ничего не знает.

# %%
print(tuple(simple_llm.LearnedPositions(T, C)(5).shape))  # (T, C)
model_learned, acc_learned = train("learned")
print("обучаемые позиции, точность (t − 1, t − 3):", [round(a, 2) for a in acc_learned.tolist()])
assert (acc_learned > 0.95).all()

# %% [markdown]
# ## Синусоидальные позиции
#
# Vaswani et al. (2017) прибавляют фиксированные векторы: пара координат $(2i, 2i+1)$ позиции $p$
# хранит
#
# $$
# \mathrm{PE}_{p,\,2i} = \sin(p\,\omega_i), \quad \mathrm{PE}_{p,\,2i+1} = \cos(p\,\omega_i),
# $$
#
# где $\omega_i = 10000^{-2i/C}$. Первые пары вращаются быстро, последние — медленно: у каждой
# позиции своё сочетание фаз, и учить ничего не нужно.

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
left.legend(fontsize=10)
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
# запрос и каждый ключ на угол, пропорциональный его позиции $p$: в соглашении `rotate_half` из
# GPT-NeoX и Hugging Face, которым пользуемся и мы, пара координат $(i, i + \mathrm{hs}/2)$
# поворачивается на $p\,\theta_i$:
#
# $$
# \begin{pmatrix} x'_i \\ x'_j \end{pmatrix}
# = \begin{pmatrix} \cos p\theta_i & -\sin p\theta_i \\ \sin p\theta_i & \cos p\theta_i \end{pmatrix}
# \begin{pmatrix} x_i \\ x_j \end{pmatrix},
# $$
#
# где $j = i + \mathrm{hs}/2$, $\theta_i = \mathrm{base}^{-2i/\mathrm{hs}}$ для $i = 0, \dots, \mathrm{hs}/2 - 1$, по
# умолчанию $\mathrm{base} = 10000$. На рисунке — одна пара координат запроса: один и тот же
# вектор в позициях 0…7.

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
# Обозначим $R(\alpha)$ поворот каждой пары на её угол. Транспонированный поворот — это поворот
# обратно, поэтому оценка запроса в позиции $p$ и ключа в позиции $s$ равна
#
# $$
# \begin{aligned}
# \big(R(p\theta)\,q\big)^\top R(s\theta)\,k &= q^\top R(p\theta)^\top R(s\theta)\,k \\
# &= q^\top R\big((s - p)\,\theta\big)\,k
# \end{aligned}
# $$
#
# и зависит только от $p - s$. Проверим: одна и та же пара векторов, ключ в позициях 0, 10 и 100,
# запрос на 0…3 шага позже.

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
# Код RoFormer и Meta объединяет в пары соседние координаты $(2i, 2i+1)$ и записывает поворот как
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
print("соседние пары == rotate_half после перестановки (до 1e-12):", (ours - meta).abs().max().item() < 1e-12)

# %% [markdown]
# ## Оценка затухает с расстоянием
#
# Su et al. отмечают и второе свойство: чем дальше друг от друга запрос и ключ, тем меньше, как
# правило, их оценка, даже если векторы у них одинаковые. Возьмём $q = k$ из одних единиц в голове
# размера, как у Llama ($\mathrm{hs} = 128$, $\mathrm{base} = 10000$): каждая пара даёт
# $2\cos\big((p - s)\,\theta_i\big)$, и быстрые пары первыми перестают совпадать по фазе. Случайный
# вектор $q = k$ в среднем даёт ту же кривую.

# %%
rope128 = simple_llm.RotaryEmbedding(head_size=128)  # размер головы и base как у Llama-7B
u = rope128(torch.ones(4097, 128))  # (T, hs): один и тот же вектор в позициях 0..4096
decay = (u @ u[0]) / 128  # (T,): оценка позиции d против позиции 0, делённая на hs
print(
    "оценка / hs на расстоянии 0, 10, 100, 1000, 4000:",
    [round(decay[d].item(), 2) for d in (0, 10, 100, 1000, 4000)],
)
bands = [decay[a:b].abs().mean().item() for a, b in ((1, 10), (10, 100), (100, 1000), (1000, 4097))]
print("среднее |оценки| / hs на расстояниях 1–9, 10–99, 100–999, 1000–4096:", [round(b, 2) for b in bands])
assert bands == sorted(bands, reverse=True)
fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
ax.plot(range(1, 4097), decay[1:].numpy(), linewidth=1)
ax.axhline(0, color="grey", linewidth=0.8)
ax.set(
    xscale="log",
    xlabel="расстояние p − s",
    ylabel="оценка / hs",
    title="RoPE: оценка вектора с самим собой",
)
plt.close(fig)
fig

# %% [markdown]
# ## Задача с вращательными позициями
#
# Вращательные позиции входят только в оценки, и здесь этого хватает. Как головы ими
# пользуются? Для каждой головы измерим её средний вес на двух ключах, которые просит задача,
# $t - 1$ и $t - 3$, и сравним с моделью с обучаемыми позициями.


# %%
def weight_on_targets(model, x):
    h = model.tok(x)  # (B, T, C)
    if model.positions == "learned":
        h = h + model.pos(x.size(1))  # (B, T, C)
    with torch.no_grad():
        w = model.attn.get_attention_weights(h)  # (B, H, T, T)
    t = torch.arange(K, x.size(1))
    return torch.stack([w[:, :, t, t - k].mean(dim=(0, 2)) for k in OFFSETS], dim=-1)  # (H, 2)


model_rope, acc_rope = train("rope")
print("вращательные позиции, точность (t − 1, t − 3):", [round(a, 2) for a in acc_rope.tolist()])
assert (acc_rope > 0.95).all()
for name, model in (("обучаемые", model_learned), ("вращательные", model_rope)):
    on = weight_on_targets(model, x_test)  # (H, 2)
    print(
        f"{name}: вес голов 0, 1 на ключах (t − 1, t − 3):",
        [[round(v, 2) for v in row] for row in on.tolist()],
    )
sharp = weight_on_targets(model_learned, x_test)  # (H, 2)
spread = weight_on_targets(model_rope, x_test)  # (H, 2)
assert (sharp.max(dim=1).values > 0.95).all() and (spread.max() < 0.5).item()

# %% [markdown]
# С обучаемыми позициями каждая голова находит свой ключ: одна кладёт почти весь вес на $t - 1$,
# другая — на $t - 3$. С вращательными позициями ни одна так не делает: каждая голова тяготеет к
# одному из двух ключей, но размазывает вес по нескольким, а линейная голова всё равно извлекает оба
# токена из двух смесей: для точности 1 голове не нужно смотреть ровно на один ключ.

# %% [markdown]
# ## Итог
#
# Без позиций один слой внимания видит прошлое как мешок токенов и проваливает задачу; обучаемые,
# синусоидальные и вращательные позиции это исправляют. С вращательными позициями оценки зависят
# только от расстояния и, как правило, затухают с его ростом. Дальше: [генерация и
# KV-кэш](../../chapters/10-generation/).

# %% [markdown]
# ## Упражнение
#
# Напишите `rope(x, start=0)`: поворотные позиции в соглашении rotate_half с основанием
# 10000, x `(..., T, hs)`, строка t стоит на позиции `start + t`, координата i в паре с
# `i + hs/2`. Проверка отличает пары соседних координат и забытый `start`.
#
# Решение свёрнуто в конце [главы](../../chapters/09-positions/#exercise): сначала напишите своё.


# %%
def rope(x, start=0):
    # ваш код здесь
    raise NotImplementedError


# %%
from simple_llm.practice import check_rope

# на заглушке: «ещё не написана»
print(check_rope(rope, lang="ru"))

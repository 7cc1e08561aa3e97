# %% [markdown]
# # Внимание с нуля: блокнот
#
# Блокнот к главе [«Внимание с нуля»](../../chapters/01-attention/). Соберём по шагам внимание
# на основе масштабированного скалярного произведения, проверим каждую форму и в конце сверим
# результат с `simple_llm.HeadAttention`.
#
# Обозначения форм (те же, что в пакете): **B** — батч, **T** — длина последовательности,
# **C** — размер эмбеддинга (`emb_size`), **hs** — размер головы (`head_size`).

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
# ## Вход и три проекции
#
# Вход `x` — батч из $B$ последовательностей по $T$ эмбеддингов размера $C$. Запросы, ключи и
# значения — три разные линейные проекции **одного и того же** `x` в пространство размера
# $\mathrm{hs}$.
# Считаем в float64. Его ошибка округления — около $10^{-16}$ от величины (у float32 — около $10^{-7}$),
# поэтому при сверке с пакетом хватает допусков примерно на девять порядков строже, чем нужны
# для float32, и настоящая ошибка не спрячется в шуме округления. Совсем без допуска сравнивать всё
# же нельзя: две правильные программы, складывающие в разном порядке, расходятся в последних битах.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn

import simple_llm

# %matplotlib inline

torch.set_default_dtype(torch.float64)  # ошибка округления ~1e-16: хватает крошечных допусков
_ = torch.manual_seed(0)
B, T, C, hs = 2, 5, 8, 4
x = torch.randn(B, T, C)
q_proj, k_proj, v_proj = nn.Linear(C, hs), nn.Linear(C, hs), nn.Linear(C, hs)
q, k, v = q_proj(x), k_proj(x), v_proj(x)
print("x:", tuple(x.shape))  # (B, T, C)
print("q, k, v:", tuple(q.shape), tuple(k.shape), tuple(v.shape))  # (B, T, hs) каждая

# %% [markdown]
# На странице написано $Q = xW_q$: вектор-строка $x$ умножается на матрицу $W_q$ формы `(C, hs)`,
# смещения в формулах опущены. `nn.Linear(C, hs)` хранит вес наоборот, в форме `(hs, C)`, и
# считает $xW^\top + b$. Значит, $W_q$ со страницы — это `q_proj.weight.T` (ниже `Wq`), а слой
# ещё прибавляет смещение `q_proj.bias`. `finfo(...).eps` — шаг округления типа данных около 1.

# %%
Wq = q_proj.weight.T  # (C, hs): Wq со страницы
print(
    "q_proj.weight:", tuple(q_proj.weight.shape), "Wq = q_proj.weight.T:", tuple(Wq.shape)
)  # (hs, C), (C, hs)
torch.testing.assert_close(q, x @ Wq + q_proj.bias)
print("q_proj(x) == x @ Wq + q_proj.bias:", torch.allclose(q, x @ Wq + q_proj.bias))
print("eps float64:", torch.finfo(torch.float64).eps, "| eps float32:", torch.finfo(torch.float32).eps)

# %% [markdown]
# ## Оценки внимания
#
# Оценка `scores[b, i, j]` — скалярное произведение запроса токена $i$ и ключа токена $j$.
# Все пары сразу даёт одно матричное умножение на транспонированные ключи.

# %%
kT = k.transpose(-2, -1)  # (B, hs, T)
scores = q @ kT  # (B, T, T)
print("scores:", tuple(scores.shape))  # (B, T, T): строка — запрос, столбец — ключ
by_hand = (q[0, 1] * k[0, 3]).sum()  # запрос 1 и ключ 3 в первом элементе батча
torch.testing.assert_close(scores[0, 1, 3], by_hand)
print("scores[0, 1, 3] == q[0, 1] · k[0, 3]:", torch.allclose(scores[0, 1, 3], by_hand))

# %% [markdown]
# ## Зачем масштабировать оценки
#
# Если компоненты запроса и ключа независимы, со средним 0 и дисперсией 1, то $q \cdot k$ — сумма
# $\mathrm{hs}$ таких произведений, и её дисперсия равна $\mathrm{hs}$. Проверим на настоящих
# тензорах: дисперсия растёт вместе с $\mathrm{hs}$, а после деления на $\sqrt{\mathrm{hs}}$ остаётся
# около 1.

# %%
_ = torch.manual_seed(0)
N = 4000  # пар (запрос, ключ) на каждый размер
print("  hs | дисперсия q·k | дисперсия q·k / √hs")
for size in (4, 16, 64, 256):
    qs, ks = torch.randn(N, size), torch.randn(N, size)
    dots = (qs * ks).sum(dim=-1)  # (N,)
    print(f"{size:>4} | {dots.var().item():13.1f} | {(dots / math.sqrt(size)).var().item():19.2f}")

# %% [markdown]
# Чем плохи большие оценки? Softmax от них почти one-hot: один вес около 1, остальные около 0.
# Производная softmax — матрица Якоби $J = \operatorname{diag}(p) - pp^\top$, и у почти one-hot
# строки она почти нулевая. Но до запроса доходит не сам $J$. Для оценок $s = Kq/\sqrt{\mathrm{hs}}$
# одного запроса $q$ по ключам $K$ его строки
#
# $$\frac{\partial p}{\partial q} = \frac{1}{\sqrt{\mathrm{hs}}}\,JK,$$
#
# а без масштаба множителя $1/\sqrt{\mathrm{hs}}$ нет, и ключи, длина которых растёт как
# $\sqrt{\mathrm{hs}}$, умножают $J$ в полную величину. Измерим на строках из $T = 16$ оценок, без
# масштаба и с ним: средний максимальный вес строки, среднюю норму $J$ и норму
# $\partial p/\partial q$ (фробениусову) — её медиану и среднее по 500 строкам.


# %%
def saturation(size, scale, rows=500, length=16):
    """По каждой строке оценок: максимальный вес, норма якобиана softmax, норма dp/dq."""
    qs, ks = torch.randn(rows, size), torch.randn(rows, length, size)
    factor = 1 / math.sqrt(size) if scale else 1.0
    p = ((ks @ qs.unsqueeze(-1)).squeeze(-1) * factor).softmax(dim=-1)  # (rows, length)
    jac = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (rows, length, length)
    dp_dq = jac @ ks * factor  # (rows, length, size): цепное правило через s = K·q·factor
    return p.amax(dim=-1), torch.linalg.matrix_norm(jac), torch.linalg.matrix_norm(dp_dq)  # (rows,) каждый


_ = torch.manual_seed(0)
sizes = [2**i for i in range(11)]  # hs = 1 … 1024
raw = [saturation(s, scale=False) for s in sizes]
scaled = [saturation(s, scale=True) for s in sizes]
shown = (4, 16, 64, 256, 512, 1024)
print("  hs | макс. вес без | с масштабом | норма J без | с масштабом")
for s, (m0, j0, _), (m1, j1, _) in zip(sizes, raw, scaled):
    if s in shown:
        print(f"{s:>4} | {m0.mean():13.3f} | {m1.mean():11.3f} | {j0.mean():11.3f} | {j1.mean():11.3f}")
print()
print("  hs | норма dp/dq без: медиана | среднее | доля < 0,001 | с масштабом: медиана | среднее")
for s, (_, _, g0), (_, _, g1) in zip(sizes, raw, scaled):
    if s in shown:
        share = (g0 < 1e-3).double().mean()
        print(
            f"{s:>4} | {g0.median():24.4f} | {g0.mean():7.2f} | {share:12.2f} | "
            f"{g1.median():19.2f} | {g1.mean():7.2f}"
        )

# %% [markdown]
# Без масштаба градиент не просто исчезает. Медиана сначала немного растёт (до $\mathrm{hs} = 16$),
# а к $\mathrm{hs} = 1024$ падает до 0,0008, и у половины строк норма меньше 0,001: в большинстве
# строк один ключ забирает весь вес, и запросу почти ничего не достаётся. А среднее растёт: в
# редких строках, где два ключа почти равны, $\partial p/\partial q$ велик. Градиент
# сосредоточен в немногих запросах. С масштабом медиана и среднее держатся вместе, около 0,3, при
# любом размере головы.
#
# Те же числа на графиках (третий — в логарифмическом масштабе).

# %%
# Графики один под другим: читаются и на телефоне.
fig, axes = plt.subplots(3, 1, figsize=(5.8, 9.4), layout="constrained")
for ax, column, name in zip(axes[:2], (0, 1), ("Максимальный вес строки", "Норма якобиана softmax")):
    ax.plot(sizes, [r[column].mean() for r in raw], "o-", label="q·k")
    ax.plot(sizes, [r[column].mean() for r in scaled], "s-", label="q·k / √hs")
    ax.set_ylabel("среднее по 500 строкам")
    ax.set_title(name)
ax = axes[2]
for rows, marker, colour, name in ((raw, "o", "C0", "q·k"), (scaled, "s", "C1", "q·k / √hs")):
    ax.plot(sizes, [r[2].median() for r in rows], marker + "-", color=colour, label=f"медиана, {name}")
    ax.plot(sizes, [r[2].mean() for r in rows], marker + "--", color=colour, label=f"среднее, {name}")
ax.set_yscale("log")
ax.set_ylabel("по 500 строкам")
ax.set_title("Норма dp/dq — градиент, который доходит до запроса")
for ax in axes:
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes[::2], [str(s) for s in sizes[::2]])
    ax.set_xlabel("размер головы hs")
    ax.legend(fontsize=8)
fig.suptitle("Softmax без масштаба насыщается")
plt.show()

# %% [markdown]
# ## Softmax по оси ключей
#
# Каждый запрос распределяет единицу внимания между ключами, поэтому softmax берётся по
# последней оси (`dim=-1`, ключи): каждая строка весов в сумме даёт 1.

# %%
weights = (scores / math.sqrt(hs)).softmax(dim=-1)  # (B, T, T)
print("weights:", tuple(weights.shape))  # (B, T, T)
torch.testing.assert_close(weights.sum(dim=-1), torch.ones(B, T))
print("суммы строк:", [round(s, 3) for s in weights[0].sum(dim=-1).tolist()])

# %% [markdown]
# Типичная ошибка — softmax по оси запросов (`dim=-2` или `dim=1`): тогда в сумме 1 дают
# столбцы, суммы строк произвольны, и запрос раздаёт уже не ровно единицу внимания.

# %%
wrong = (scores / math.sqrt(hs)).softmax(dim=1)  # (B, T, T), но нормированы столбцы
print("суммы строк:", [round(s, 3) for s in wrong[0].sum(dim=-1).tolist()])
print("суммы столбцов:", [round(s, 3) for s in wrong[0].sum(dim=-2).tolist()])

# %% [markdown]
# ## Взвешенная сумма значений
#
# Выход для токена $i$ — сумма значений всех токенов с весами из строки $i$:
#
# $$\text{out}_{b,i} = \sum_j \text{weights}_{b,i,j}\, v_{b,j}.$$
#
# В матричной записи это `weights @ v`.

# %%
out = weights @ v  # (B, T, T) @ (B, T, hs) -> (B, T, hs)
print("out:", tuple(out.shape))  # (B, T, hs)
by_hand = sum(weights[0, 2, j] * v[0, j] for j in range(T))  # токен 2, первый элемент батча
torch.testing.assert_close(out[0, 2], by_hand)
print("out[0, 2] == Σ_j weights[0, 2, j] · v[0, j]:", torch.allclose(out[0, 2], by_hand))

# %% [markdown]
# ## Каузальная версия
#
# В языковой модели токен не должен видеть будущее: запросу $i$ доступны только ключи $j \le i$.
# Оценки над диагональю заменяем на $-\infty$ до softmax, и их веса становятся ровно 0.
# Подробно маска разобрана в следующей главе.

# %%
causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): True — можно смотреть
masked = (scores / math.sqrt(hs)).masked_fill(~causal, float("-inf"))  # (B, T, T)
causal_weights = masked.softmax(dim=-1)  # (B, T, T)
causal_out = causal_weights @ v  # (B, T, hs)
print("causal_out:", tuple(causal_out.shape))  # (B, T, hs)
print("веса над диагональю равны 0:", bool((causal_weights.triu(diagonal=1) == 0).all()))

# %% [markdown]
# ## Сверка с HeadAttention
#
# `simple_llm.HeadAttention` — та же каузальная голова. Скопируем в неё веса наших трёх
# проекций и сравним выход и веса внимания.

# %%
head = simple_llm.HeadAttention(emb_size=C, head_size=hs, max_seq_len=T)
head.q_proj.load_state_dict(q_proj.state_dict())
head.k_proj.load_state_dict(k_proj.state_dict())
head.v_proj.load_state_dict(v_proj.state_dict())
torch.testing.assert_close(head(x), causal_out)
torch.testing.assert_close(head.get_attention_weights(x), causal_weights)
same = torch.allclose(head(x), causal_out) and torch.allclose(head.get_attention_weights(x), causal_weights)
print("HeadAttention:", tuple(head(x).shape), "— совпадает с ручной версией:", same)  # (B, T, hs)

# %% [markdown]
# ## Самовнимание и перекрёстное внимание
#
# Всё, что было выше, — **самовнимание** (self-attention): запросы, ключи и значения — проекции
# одного и того же `x`, последовательность смотрит сама на себя. В **перекрёстном внимании**
# (cross-attention) запросы берутся из одной последовательности, а ключи и значения — из другой,
# и её длина `T_k` может быть другой (классический пример — декодер переводчика, который читает
# закодированное исходное предложение). Формула та же; оценки имеют форму `(B, T_q, T_k)` и уже
# не квадратные, а у выхода по строке на запрос: `(B, T_q, hs)`. Каузальная маска там обычно не
# нужна: другая последовательность уже известна целиком.

# %%
import torch.nn.functional as F

T_q, T_k = 3, 7
x_q = torch.randn(B, T_q, C)  # (B, T_q, C): последовательность, которая спрашивает
memory = torch.randn(B, T_k, C)  # (B, T_k, C): последовательность, которую читают
q_c, k_c, v_c = q_proj(x_q), k_proj(memory), v_proj(memory)  # (B, T_q, hs), (B, T_k, hs), (B, T_k, hs)
cross_weights = (q_c @ k_c.transpose(-2, -1) / math.sqrt(hs)).softmax(dim=-1)  # (B, T_q, T_k)
cross_out = cross_weights @ v_c  # (B, T_q, hs)
torch.testing.assert_close(cross_out, F.scaled_dot_product_attention(q_c, k_c, v_c))
print(
    "веса перекрёстного внимания:", tuple(cross_weights.shape), "выход:", tuple(cross_out.shape)
)  # (B, T_q, T_k), (B, T_q, hs)

# %% [markdown]
# ## Итог
#
# $\operatorname{softmax}(QK^\top/\sqrt{\mathrm{hs}})\,V$: три проекции одного входа, оценки (B, T, T), масштаб $1/\sqrt{\mathrm{hs}}$ против
# насыщения softmax, нормировка по оси ключей, взвешенная сумма значений (B, T, hs).
# Дальше — [одна голова внимания](../../chapters/02-one-head/) как модуль: маска, каузальность,
# карта весов.

# %% [markdown]
# ## Упражнение
#
# Напишите `attention(q, k, v, mask=None)` сами, не подглядывая выше: q `(B, H, T_q, hs)`,
# k и v `(B, H, T_k, hs)`, маска `(T_q, T_k)` из bool, где `True` значит «можно смотреть»;
# функция возвращает пару `(out, weights)`. Следующая ячейка проверит её: если что-то не так,
# назовёт ошибку и раздел книги, где она разобрана.
#
# Решение свёрнуто в конце [главы](../../chapters/01-attention/#exercise): сначала напишите своё.


# %%
def attention(q, k, v, mask=None):
    # ваш код здесь
    raise NotImplementedError


# %%
from simple_llm.practice import check_attention

# на заглушке: «ещё не написана»
print(check_attention(attention, lang="ru"))

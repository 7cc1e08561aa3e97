# %% [markdown]
# # Одна голова внимания: блокнот
#
# Блокнот к главе [«Одна голова внимания»](../../chapters/02-one-head/). В [первой
# главе](../../chapters/01-attention/) мы собрали $\operatorname{softmax}(QK^\top/\sqrt{\mathrm{hs}})\,V$ по шагам; здесь та же
# формула становится модулем `simple_llm.HeadAttention` с каузальной маской.
#
# Обозначения форм: **B** — батч, **T** — длина последовательности, **C** — размер эмбеддинга
# (`emb_size`), **hs** — размер головы (`head_size`).

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
# ## Модуль HeadAttention
#
# `HeadAttention(emb_size, head_size, max_seq_len)` хранит три проекции `q_proj`, `k_proj`,
# `v_proj` — слои `nn.Linear(C, hs)`. Больше обучаемых параметров у головы нет.

# %%
import math

import torch

import simple_llm

# показывать рисунки (Figure) прямо в блокноте
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # ошибка округления ~1e-16: хватает крошечных допусков
_ = torch.manual_seed(0)
C, hs, max_seq_len = 16, 8, 8
head = simple_llm.HeadAttention(emb_size=C, head_size=hs, max_seq_len=max_seq_len)
for name, param in head.named_parameters():
    print(f"{name:15} {tuple(param.shape)}")  # вес (hs, C), смещение (hs,)

# %% [markdown]
# ## Каузальная маска: нижний треугольник
#
# Токен $t$ может смотреть на себя и на все токены до себя, но не дальше. Для $T = 5$ это нижний
# треугольник матрицы из единиц, `torch.tril`: строка — запрос, столбец — ключ, 1 — можно
# смотреть.

# %%
T = 5
mask = torch.tril(torch.ones(T, T, dtype=torch.long))  # (T, T)
for t, row in enumerate(mask.tolist()):
    print(f"запрос {t}:", *row)
print(tuple(mask.shape))  # (T, T)

# %% [markdown]
# ## Минус бесконечность до softmax
#
# Запрещённые оценки заменяем на $-\infty$ **до** softmax: $e^{-\infty} = 0$, поэтому вес
# будущего токена ровно 0, а оставшиеся веса строки по-прежнему в сумме дают 1.

# %%
_ = torch.manual_seed(0)
scores = torch.randn(T, T)  # (T, T): какие-то оценки запрос × ключ
weights = scores.masked_fill(mask == 0, float("-inf")).softmax(dim=-1)  # (T, T)
assert (weights.triu(diagonal=1) == 0).all()  # над диагональю ровно 0
torch.testing.assert_close(weights.sum(dim=-1), torch.ones(T))
for t, row in enumerate((weights > 0).int().tolist()):
    print(f"вес > 0, запрос {t}:", *row)
print("суммы строк:", [round(s, 3) for s in weights.sum(dim=-1).tolist()])

# %% [markdown]
# Типичная ошибка — заполнить будущее нулём, а не $-\infty$. Ноль — обычная оценка: $e^0 = 1$,
# и будущие токены получают заметный вес. Другая ошибка — умножить веса на маску после softmax:
# будущее исчезает, но веса строки больше не дают в сумме 1.

# %%
wrong = scores.masked_fill(mask == 0, 0.0).softmax(dim=-1)  # (T, T)
print("вес будущего у запроса 0:", round(wrong[0, 1:].sum().item(), 3))
print("вес будущего у запроса 0 с −∞:", round(weights[0, 1:].sum().item(), 3))
after = scores.softmax(dim=-1) * mask  # (T, T): маска после softmax
print("суммы строк, маска после softmax:", [round(s, 3) for s in after.sum(dim=-1).tolist()])

# %% [markdown]
# ## Голова вручную и сверка с пакетом
#
# Соберём голову из её же проекций: оценки, масштаб $1/\sqrt{\mathrm{hs}}$, маска, softmax по ключам,
# взвешенная сумма значений. Выход и веса должны совпасть с `head(x)` и
# `head.get_attention_weights(x)`.


# %%
def head_by_hand(head, x):
    T = x.size(1)
    q, k, v = head.q_proj(x), head.k_proj(x), head.v_proj(x)  # (B, T, hs)
    scores = q @ k.transpose(-2, -1) / math.sqrt(head.head_size)  # (B, T, T)
    future = ~torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): True над диагональю
    weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)  # (B, T, T)
    return weights @ v, weights  # (B, T, hs), (B, T, T)


x = torch.randn(2, 6, C)  # (B, T, C)
out, weights = head_by_hand(head, x)
torch.testing.assert_close(head(x), out)
torch.testing.assert_close(head.get_attention_weights(x), weights)
same = torch.allclose(head(x), out) and torch.allclose(head.get_attention_weights(x), weights)
print(
    "выход", tuple(out.shape), "и веса", tuple(weights.shape), "совпадают с HeadAttention:", same
)  # (B, T, hs), (B, T, T)

# %% [markdown]
# ## Каузальность на деле
#
# Заменим токен $t + 1$ на другой. Выходы для позиций $0, \dots, t$ не должны сдвинуться ни на
# бит: их запросы просто не видят позицию $t + 1$.

# %%
t = 2
x_changed = x.clone()
x_changed[:, t + 1] = torch.randn(2, C)  # (B, C): новый токен на позиции t + 1
out_changed = head(x_changed)  # (B, T, hs)
assert torch.equal(head(x)[:, : t + 1], out_changed[:, : t + 1])
moved = (head(x) - out_changed).abs().amax(dim=(0, 2)) > 0  # (T,)
print("позиция сдвинулась:", moved.tolist())

# %% [markdown]
# ## Метод get_attention_weights
#
# Кроме `forward` у головы есть метод из API исходного проекта: `get_attention_weights(x)`
# возвращает веса (B, T, T), строка $t$ — распределение внимания запроса $t$ по ключам. У обоих
# методов есть необязательный аргумент `mask` (маска паддинга или любой другой шаблон, глава 4);
# каузальная маска применяется всегда, поверх неё.

# %%
w = head.get_attention_weights(x)  # (B, T, T)
print(tuple(w.shape))  # (B, T, T)
torch.testing.assert_close(w.sum(dim=-1), torch.ones(2, 6))
print("первая строка:", [round(p, 3) for p in w[0, 0].tolist()])  # запрос 0 видит только себя

# %% [markdown]
# ## Карта весов
#
# Нарисуем веса для короткого предложения. Обучения здесь нет: «эмбеддинги слов» — случайные
# векторы, поэтому сами числа смысла не несут. Видна форма: всё над диагональю — ноль.
# `plot_attention_heads` ждёт (H, T, T); у одной головы веса (1, T, T) — это $H = 1$.
#
# В строке 0 всегда один вес, равный 1,0: первый токен видит только себя. На шкале от 0 до 1
# остальные строки рядом с ней были бы почти чёрными, поэтому шкала обрезана по самому большому
# весу вне строки 0 (`vmax=`): строка 0 закрашена верхним цветом шкалы, а стрелка на цветовой
# шкале напоминает, что она обрезана.

# %%
tokens = ["кот", "сел", "на", "тёплый", "мягкий", "коврик"]
_ = torch.manual_seed(1)
x_words = torch.randn(1, len(tokens), C)  # (B=1, T=6, C): по эмбеддингу на слово
w = head.get_attention_weights(x_words)  # (1, T, T), читаем как (H=1, T, T)
print(tuple(w.shape))  # (1, T, T)
print("вес на себя:", [round(p, 2) for p in w[0].diagonal().tolist()])
vmax = w[0, 1:].max().item()  # самый большой вес вне строки 0
print("самый большой вес вне строки 0:", round(vmax, 2))
fig = simple_llm.plot_attention_heads(
    w, tokens=tokens, lang="ru", title="Одна голова, без обучения", vmax=vmax
)
fig

# %% [markdown]
# ## Предел длины max_seq_len
#
# `max_seq_len` — самая длинная последовательность, которую голова принимает. В модели с
# обучаемыми позиционными эмбеддингами длиннее и не бывает: для позиций дальше нет векторов.
# Более длинный вход — ошибка с понятным сообщением, а не тихий обрыв.

# %%
too_long = torch.randn(1, max_seq_len + 1, C)  # (B, T, C) с T = 9 > 8
try:
    head(too_long)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## Итог
#
# Голова — три проекции, оценки (B, T, T), каузальная маска ($-\infty$ над диагональю), softmax по
# ключам и взвешенная сумма значений (B, T, hs). Дальше — [многоголовое
# внимание](../../chapters/03-multi-head/): несколько голов параллельно.

# %% [markdown]
# ## Упражнение
#
# Напишите `causal_mask(T)`: тензор bool формы `(T, T)`, где `True` в строке t и столбце s
# значит, что запрос t может смотреть на ключ s. Следующая ячейка проверит её и назовёт
# ошибку, если токен видит будущее или не видит сам себя.
#
# Решение свёрнуто в конце [главы](../../chapters/02-one-head/#exercise): сначала напишите своё.


# %%
def causal_mask(T):
    # ваш код здесь
    raise NotImplementedError


# %%
from simple_llm.practice import check_causal_mask

# на заглушке: «ещё не написана»
print(check_causal_mask(causal_mask, lang="ru"))

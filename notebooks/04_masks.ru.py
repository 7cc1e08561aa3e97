# %% [markdown]
# # Маски внимания: блокнот
#
# Блокнот к главе [«Маски внимания»](../../chapters/04-masks/). Каузальная маска в
# `MultiHeadAttention` включена всегда; поверх неё можно передать свою маску `mask=…`: паддинг,
# локальное окно, любой другой шаблон. Здесь мы проверяем, как пакет их объединяет, какие формы
# принимает, как перевести маску в соглашения PyTorch и почему полностью закрытая строка не
# даёт NaN.
#
# Обозначения форм: **B** — батч, **T** — длина последовательности, **C** — размер эмбеддинга
# (`emb_size`), **H** — число голов (`num_heads`), **hs** — размер головы (`head_size`).
# В пакете `True` (или 1) в маске значит «можно смотреть».

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
# ## Модуль и каузальная маска
#
# Маленький модуль: $H = 2$ головы, $C = 8$, $\mathrm{hs} = 4$, батч из двух последовательностей длины 5.
# `dropout=0.0` и `eval()` — чтобы выходы можно было сравнивать точно. Без аргумента `mask`
# действует одна каузальная маска: все веса над диагональю равны нулю.

# %%
import math

import torch
import torch.nn.functional as F

import simple_llm


def show(mask, label="запрос"):
    """Печатает булеву маску по строкам: 1 — можно смотреть."""
    for t, row in enumerate(mask.int().tolist()):
        print(f"{label} {t}:", *row)


torch.set_default_dtype(torch.float64)  # точные сравнения
_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 5, 8, 2, 4
mha = simple_llm.MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0).eval()
x = torch.randn(B, T, C)  # (B, T, C)
causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): True = можно смотреть
w = mha.get_attention_weights(x)  # (B, H, T, T)
assert (w[..., ~causal] == 0).all()  # будущее — ровно 0
show(causal)
print(tuple(w.shape))  # (B, H, T, T)

# %% [markdown]
# ## Маска паддинга
#
# В батче последовательности разной длины; короткие дополнены в конце токенами-заполнителями.
# `simple_llm.padding_mask(lengths)` даёт маску (B, T): `True` — настоящий токен. Пакет
# объединяет её с каузальной логическим «и», и заполнители не получают ни капли внимания.

# %%
pad = simple_llm.padding_mask([5, 3])  # (B, T): длины 5 и 3
show(pad, "последовательность")
allowed = pad[:, None, :] & causal  # (B, T, T): что на самом деле разрешено
w = mha.get_attention_weights(x, mask=pad)  # (B, H, T, T)
assert (w.masked_select(~allowed[:, None]) == 0).all()  # закрытый ключ — ровно 0
print("вес > 0 во второй последовательности, голова 0:")
show(w[1, 0] > 0)  # (T, T): ключи 3 и 4 — заполнители

# %% [markdown]
# ## Своя маска: локальное окно
#
# Любой шаблон (T, T) — тоже маска. Локальное окно ширины 2: запрос $t$ видит ключи $t - 1$ и $t$.
# Верхнюю половину можно не закрывать: каузальная маска всё равно добавится. Рядом выведем,
# что получилось в итоге: `local & causal`.

# %%
window = 2
i = torch.arange(T)
local = (i[:, None] - i[None, :]).abs() < window  # (T, T): полоса вокруг диагонали
w = mha.get_attention_weights(x, mask=local)  # (B, H, T, T)
assert torch.equal(w[0, 0] > 0, local & causal)
print("маска local:")
show(local)
print("вес > 0 (local & causal):")
show(w[0, 0] > 0)

# %% [markdown]
# ## Сверка с ручным расчётом
#
# Повторим то, что делает пакет: проекции $Q$, $K$, $V$ из `mha.qkv`, оценки
# $QK^\top/\sqrt{\mathrm{hs}}$, объединение маски пользователя с каузальной, $-\infty$ на закрытых местах, softmax по ключам, сборка голов и
# выходная проекция. Функции `heads` и `merge` пригодятся и дальше.


# %%
def heads(x):
    qkv = mha.qkv(x).view(x.size(0), x.size(1), 3, H, hs)  # (B, T, 3, H, hs)
    return qkv.permute(2, 0, 3, 1, 4)  # (3, B, H, T, hs): q, k, v


def merge(y):
    return mha.proj(y.transpose(1, 2).reshape(y.size(0), y.size(2), H * hs))  # (B, T, C)


q, k, v = heads(x)  # (B, H, T, hs) каждый
scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
weights = scores.masked_fill(~(local & causal), float("-inf")).softmax(dim=-1)  # (B, H, T, T)
torch.testing.assert_close(mha.get_attention_weights(x, mask=local), weights)
torch.testing.assert_close(mha(x, mask=local), merge(weights @ v))
same = torch.allclose(mha.get_attention_weights(x, mask=local), weights) and torch.allclose(
    mha(x, mask=local), merge(weights @ v)
)
print("веса", tuple(weights.shape), "и выход", tuple(merge(weights @ v).shape), "совпадают с пакетом:", same)

# %% [markdown]
# ## Паддинг справа: каузальная маска уже закрывает его
#
# При паддинге в конце каждый ключ-заполнитель стоит после всех настоящих токенов, в их будущем,
# и каузальная маска уже закрывает его от них. Поэтому выходы настоящих токенов с маской паддинга
# и без неё совпадают побитно (`torch.equal`); меняются только строки самих заполнителей, а они
# не используются. Маска паддинга нужна там, где заполнитель не в будущем настоящего токена: при
# паддинге **слева** (при пакетной генерации в декодере затравки обычно дополняют слева, чтобы
# каждая последовательность продолжалась со своей последней позиции) и в двунаправленном энкодере, где
# каузальной маски нет (здесь это `F.scaled_dot_product_attention` без `is_causal`).

# %%
with_pad, without_pad = mha(x, mask=pad), mha(x)  # (B, T, C) each
print(
    "паддинг справа, настоящие токены с маской и без неё побитно равны:",
    torch.equal(with_pad[1, :3], without_pad[1, :3]),
)
print("паддинг справа, строки заполнителей равны:", torch.equal(with_pad[1, 3:], without_pad[1, 3:]))
left = pad.flip(-1)  # (B, T): те же длины, паддинг слева
print(
    "паддинг слева, настоящие токены без маски те же:", torch.equal(mha(x, mask=left)[1, 2:], mha(x)[1, 2:])
)
q, k, v = heads(x)  # (B, H, T, hs) каждый
real_keys = pad[:, None, None, :]  # (B, 1, 1, T): True — настоящий ключ
encoder = F.scaled_dot_product_attention(
    q, k, v, attn_mask=real_keys
)  # (B, H, T, hs): без каузальной маски, как в энкодере
encoder_without = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, hs)
print("энкодер, настоящие токены без маски те же:", torch.equal(encoder[1, :, :3], encoder_without[1, :, :3]))

# %% [markdown]
# ## Какие формы принимает маска
#
# Одна и та же маска паддинга в разных формах даёт один и тот же выход: (B, T), (B, 1, T),
# (B, T, T) и (B, H, T, T). Форма (T, T) — общий шаблон для всего батча, как `local` выше.

# %%
forms = {
    "(B, T)": pad,
    "(B, 1, T)": pad[:, None, :],  # (B, 1, T)
    "(B, T, T)": pad[:, None, :].expand(B, T, T),  # (B, T, T)
    "(B, H, T, T)": pad[:, None, None, :].expand(B, H, T, T),  # (B, H, T, T)
}
reference = mha(x, mask=pad)  # (B, T, C)
for name, m in forms.items():
    torch.testing.assert_close(mha(x, mask=m), reference)
    print(f"{name:13} {tuple(m.shape)} -> тот же выход:", torch.allclose(mha(x, mask=m), reference))

# %% [markdown]
# Ловушка: когда $B = T$, двумерная маска неоднозначна. Пакет проверяет форму (T, T) первой,
# поэтому такая маска читается как шаблон «запрос × ключ», а не как паддинг. Маску паддинга в
# этом случае передавайте в форме (B, 1, T).

# %%
x3 = torch.randn(3, 3, C)  # (B, T, C) с B == T == 3
pad3 = simple_llm.padding_mask([3, 1, 2])  # (B, T) == (3, 3)
as_pattern = mha(x3, mask=pad3)  # прочитана как (T, T)
as_padding = mha(x3, mask=pad3[:, None, :])  # (B, 1, T): настоящий паддинг
torch.testing.assert_close(as_pattern, mha(x3, mask=pad3.expand(3, 3, 3)))  # (B, T, T): строки — запросы
print("(3, 3) прочитана как паддинг:", torch.allclose(as_pattern, as_padding))

# %% [markdown]
# ## Три соглашения о полярности
#
# | Где | Что значит `True` | Вещественная маска (float) |
# | --- | --- | --- |
# | `simple_llm` | можно смотреть | не принимается (только 0/1) |
# | `nn.MultiheadAttention` (`attn_mask`, `key_padding_mask`) | закрыто | прибавляется к оценкам |
# | `F.scaled_dot_product_attention` (`attn_mask`) | можно смотреть | прибавляется к оценкам |
#
# Сначала `nn.MultiheadAttention`: копируем в него веса (`mha.to_torch()`) и инвертируем маски
# оператором `~`. Каузальную маску PyTorch сам не добавит — передаём её явно.
#
# Затем `F.scaled_dot_product_attention`. Булева маска — в нашей полярности, её можно передать
# как есть. Вещественная маска прибавляется к оценкам: 0 там, где можно смотреть, $-\infty$ там, где нельзя.

# %%
torch_mha = mha.to_torch().eval()  # те же веса в nn.MultiheadAttention(C, H, batch_first=True)
out_torch, _ = torch_mha(x, x, x, attn_mask=~causal, key_padding_mask=~pad, need_weights=False)
torch.testing.assert_close(out_torch, mha(x, mask=pad))
print(
    "nn.MultiheadAttention: True = закрыто, выход",
    tuple(out_torch.shape),
    "совпадает:",
    torch.allclose(out_torch, mha(x, mask=pad)),
)  # (B, T, C)

bool_mask = allowed[:, None]  # (B, 1, T, T): True = можно смотреть
additive = torch.zeros(B, 1, T, T).masked_fill(~bool_mask, float("-inf"))  # (B, 1, T, T)
q, k, v = heads(x)  # (B, H, T, hs) каждый
out_bool = merge(F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask))  # (B, T, C)
out_add = merge(F.scaled_dot_product_attention(q, k, v, attn_mask=additive))  # (B, T, C)
torch.testing.assert_close(out_bool, mha(x, mask=pad))
torch.testing.assert_close(out_add, mha(x, mask=pad))
same = torch.allclose(out_bool, mha(x, mask=pad)) and torch.allclose(out_add, mha(x, mask=pad))
print("SDPA, булева и аддитивная маски: выход", tuple(out_add.shape), "совпадает:", same)  # (B, T, C)

# %% [markdown]
# ## Аддитивная маска: понятная ошибка
#
# Аддитивную маску (0 и $-\infty$) легко по привычке передать в `simple_llm`. Пакет не гадает, что
# имелось в виду, а останавливается с сообщением, где названы найденное значение и способ перевода.

# %%
try:
    mha(x, mask=additive[:, 0])  # (B, T, T) из 0 и −∞
except ValueError as error:
    print("ValueError:", error)
converted = additive[:, 0] == 0  # (B, T, T): True = можно смотреть
torch.testing.assert_close(mha(x, mask=converted), mha(x, mask=pad))
print("после additive == 0 выход тот же:", torch.allclose(mha(x, mask=converted), mha(x, mask=pad)))

# %% [markdown]
# ## Полностью закрытая строка
#
# Если строке запроса не разрешён ни один ключ, все её оценки равны $-\infty$. Наивный softmax
# считает
#
# $$\frac{e^{-\infty}}{\sum_j e^{-\infty}} = \frac{0}{0},$$
#
# получается NaN, и он затем расползается по сети и по градиентам.
#
# Такая строка появляется сама, стоит дополнить последовательность **слева**: у второй
# последовательности первые два токена — заполнители, и запросы 0 и 1 видят (по каузальной маске)
# только их. `simple_llm` отдаёт для таких строк нулевые веса, нулевой выход голов (до выходной
# проекции) и конечные градиенты.

# %%
row = torch.full((T,), float("-inf"))  # (T,): ни одного открытого ключа
naive = row.softmax(dim=-1)  # (T,)
print("NaN в наивном softmax:", torch.isnan(naive).any().item())

left = simple_llm.padding_mask([5, 3]).flip(-1)  # (B, T): заполнители слева
show(left, "последовательность")
x_grad = x.clone().requires_grad_(True)  # (B, T, C)
w = mha.get_attention_weights(x_grad, mask=left)  # (B, H, T, T)
print("суммы строк, вторая последовательность:", w[1, 0].sum(dim=-1).round().int().tolist())
assert (w[1, :, :2] == 0).all()  # закрытые строки — нули, не NaN
assert (w.masked_select(~(left[:, None, None, :] & causal)) == 0).all()  # закрытый ключ — ровно 0
assert (mha.head(1)(x, mask=left)[1, :2] == 0).all()  # выход головы до проекции — нули
mha(x_grad, mask=left).pow(2).sum().backward()
assert torch.isfinite(x_grad.grad).all()
assert all(torch.isfinite(p.grad).all() for p in mha.parameters())
print("градиенты конечны:", tuple(x_grad.grad.shape))  # (B, T, C)

# %% [markdown]
# ## Маски в клетку
#
# Четыре маски этого блокнота рядом, для второй последовательности (длины 5 и 3): строка —
# запрос, столбец — ключ, закрашенная клетка — «можно смотреть». Маска паддинга — это флаг на
# каждый ключ, один и тот же для всех запросов; логическое «и» с каузальной маской срезает у
# треугольника столбцы. При паддинге слева строки 0 и 1 теряют все ключи: они обведены красным.

# %%
import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap

# %matplotlib inline

grids = {
    "каузальная": causal,  # (T, T)
    "паддинг [5, 3]": pad[1].expand(T, T),  # (T, T): флаг на ключ, одинаковый для всех запросов
    "паддинг & каузальная": pad[1] & causal,  # (T, T)
    "паддинг слева & каузальная": left[1] & causal,  # (T, T)
}
empty = (~(left[1] & causal).any(dim=-1)).nonzero().flatten().tolist()  # запросы без ключей
print("полностью закрытые строки (паддинг слева):", empty)
assert empty == [0, 1]
fig, axes = plt.subplots(2, 2, figsize=(4.4, 4.8), layout="constrained")
for ax, (title, grid) in zip(axes.flat, grids.items()):
    ax.imshow(grid.int().numpy(), cmap=ListedColormap(["#eeeeee", "#2a9d8f"]), vmin=0, vmax=1)
    ax.set_xticks(range(T), minor=False)
    ax.set_yticks(range(T))
    ax.set_xticks([i - 0.5 for i in range(1, T)], minor=True)
    ax.set_yticks([i - 0.5 for i in range(1, T)], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(labelsize=8)
    ax.set_xlabel("ключ")
    ax.set_ylabel("запрос")
    ax.set_title(title, fontsize=10)
    if title == "паддинг слева & каузальная":
        for t in empty:
            ax.add_patch(
                plt.Rectangle((-0.45, t - 0.45), T - 0.1, 0.9, fill=False, edgecolor="#d62828", linewidth=2.5)
            )
fig.suptitle("Последовательность 1, T = 5: закрашено — можно смотреть", fontsize=11)
plt.show()

# %% [markdown]
# ## Итог
#
# Маска пользователя объединяется с каузальной логическим «и». В пакете `True` значит «можно
# смотреть» — так же, как в булевой маске `F.scaled_dot_product_attention`, а у
# `nn.MultiheadAttention` — наоборот. Закрытый ключ получает ровно 0, закрытая строка — нули без NaN.
# Дальше — [что видят обученные головы](../../chapters/05-seeing-heads/).

# %% [markdown]
# ## Упражнение
#
# Напишите `attention(q, k, v, mask=None)` с маской: маска bool `(T_q, T_k)`, `True` значит
# «можно смотреть», и применяется она до softmax. Функция возвращает `(out, weights)`. Проверка
# отличает маску, понятую наоборот, маску после softmax, маску, заполненную нулями вместо
# `-inf`, и маску, которая ничего не делает.
#
# Решение свёрнуто в конце [главы](../../chapters/04-masks/#exercise): сначала напишите своё.


# %%
def attention(q, k, v, mask=None):
    # ваш код здесь
    raise NotImplementedError


# %%
from simple_llm.practice import check_attention

# на заглушке: «ещё не написана»
print(check_attention(attention, lang="ru"))

# %% [markdown]
# # Типичные ошибки: блокнот
#
# Каждая типичная ошибка здесь — маленькая сломанная функция, которая запускается. Для каждой
# запускаем проверку из предыдущих глав и показываем, что проверка её ловит: проверка бросает
# `AssertionError` с коротким сообщением, мы его перехватываем и печатаем. Эталон — модуль
# `MultiHeadAttention` пакета и `torch.nn.MultiheadAttention` с теми же весами.
# Текст главы: [Типичные ошибки](../../chapters/07-common-mistakes/).
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
# ## Эталон
#
# Модуль пакета в float64 и его копия в `torch.nn.MultiheadAttention` (`mha.to_torch()`). У PyTorch
# маска обратной полярности: `True` значит «закрыто», поэтому передаём `~causal`.

# %%
import math

import matplotlib.pyplot as plt
import torch

from simple_llm import Decoder, FeedForward, MultiHeadAttention

# показывать рисунки (Figure) прямо в блокноте
# %matplotlib inline

_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 6, 16, 4, 4
mha = MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0).double().eval()
x = torch.randn(B, T, C, dtype=torch.float64)
causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T), True = можно смотреть
reference = mha.to_torch()(x, x, x, attn_mask=~causal, need_weights=False)[0]  # (B, T, C)
torch.testing.assert_close(mha(x), reference)
print(
    "MultiHeadAttention == nn.MultiheadAttention:", torch.allclose(mha(x), reference), tuple(reference.shape)
)

# %% [markdown]
# ## Правильная сборка по частям
#
# Та же сборка, что в главе 3, разбитая на функции: проекция и разделение на головы, веса внимания,
# склейка голов, выходная проекция. Сломанные варианты ниже подменяют по одной части.


# %%
def project_and_split(x):
    qkv = mha.qkv(x).view(x.size(0), x.size(1), 3, H, hs)  # (B, T, 3, H, hs)
    return qkv.permute(2, 0, 3, 1, 4)  # (B, H, T, hs) каждый


def scores_of(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(hs)  # (..., T, T)


def weights_of(q, k):
    return scores_of(q, k).masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)


def merge(y):
    return y.transpose(1, 2).reshape(y.size(0), y.size(2), H * hs)  # (B, T, H*hs)


def attention(x, weights_fn=weights_of, merge_fn=merge, after_merge=mha.proj):
    q, k, v = project_and_split(x)  # (B, H, T, hs) каждый
    return after_merge(merge_fn(weights_fn(q, k) @ v))  # (B, T, C)


torch.testing.assert_close(attention(x), reference)
print("ручная сборка == эталон:", torch.allclose(attention(x), reference), tuple(attention(x).shape))

# %% [markdown]
# ## Проверки из предыдущих глав
#
# Строки весов в сумме дают 1 (глава 1); изменение последнего токена не сдвигает прошлые выходы
# (глава 2); выход совпадает с эталоном (глава 3). `run_check` вызывает проверку внутри
# `try/except AssertionError` и печатает «пройдено» или «поймано: …».


# %%
def check_rows_sum_to_one(weights):
    deviation = (weights.sum(dim=-1) - 1).abs().max().item()
    if not deviation < 1e-9:  # NaN тоже не пройдёт
        raise AssertionError(f"строки весов в сумме не дают 1 (отклонение {deviation:.3f})")


def check_causal(fn):
    x_changed = x.clone()
    x_changed[:, -1] += 1.0  # меняем только последний токен
    change = (fn(x_changed)[:, :-1] - fn(x)[:, :-1]).abs().max().item()
    if not change < 1e-9:
        raise AssertionError(f"будущее просачивается в прошлое (изменение до {change:.3f})")


def check_equal(out, expected):
    if out.shape != expected.shape:
        raise AssertionError(f"форма {tuple(out.shape)} вместо {tuple(expected.shape)}")
    diff = (out - expected).abs().max().item()
    if not diff < 1e-9:
        raise AssertionError(f"выход не совпадает с эталоном (разница до {diff:.3f})")


def run_check(label, check, *args):
    try:
        check(*args)
        print(f"{label}: пройдено")
    except AssertionError as err:
        print(f"{label}: поймано: {err}")


q, k, v = project_and_split(x)  # (B, H, T, hs) каждый
run_check("эталон, строки", check_rows_sum_to_one, weights_of(q, k))
run_check("эталон, каузальность", check_causal, attention)
run_check("эталон, сверка", check_equal, attention(x), reference)

# %% [markdown]
# ## Ошибка 1. Разделение на головы до проекции
#
# Сырой вход режут на $H$ кусков по $C/H$ признаков, а потом пытаются применить проекцию `qkv`,
# которая ждёт все $C$ признаков. Размерности не сходятся, и PyTorch падает с `RuntimeError`.
# Правильный порядок: сначала проекция $C \to 3H\,\mathrm{hs}$, потом разделение.


# %%
def split_then_project(x):
    parts = x.view(B, T, H, C // H)  # (B, T, H, C/H): сырой вход, разрезанный на головы
    return parts @ mha.qkv.weight.T  # проекция ждёт C признаков


try:
    split_then_project(x)
except RuntimeError:
    print(f"поймано: RuntimeError, у куска {C // H} признака, а проекция ждёт C = {mha.qkv.in_features}")
print("правильно:", tuple(mha.qkv(x).shape), "->", tuple(q.shape))  # (B, T, 3*H*hs) -> (B, H, T, hs)

# %% [markdown]
# ## Ошибка 1, тихий вариант: проекция на каждый кусок
#
# Вариант, который запускается: разрезать вход на $H$ кусков по $C/H$ признаков и дать каждой
# голове свою маленькую проекцию $C/H \to 3\,\mathrm{hs}$. Формы сходятся, но весов в проекции в
# $H$ раз меньше, и каждая голова видит только свой кусок токена. Проверка: запросы головы должны
# зависеть от всех $C$ признаков входа (градиент запросов головы 0 по каждому признаку).


# %%
def project_each_slice(x, layers):
    parts = x.view(x.size(0), x.size(1), H, C // H)  # (B, T, H, C/H): голове h достаётся только её кусок
    qkv = torch.stack([layer(parts[:, :, h]) for h, layer in enumerate(layers)], dim=2)  # (B, T, H, 3*hs)
    return qkv.view(x.size(0), x.size(1), H, 3, hs).permute(3, 0, 2, 1, 4)  # (B, H, T, hs) каждый


def check_head_sees_all_features(project):
    x_in = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(project(x_in)[0][:, 0].sum(), x_in)  # запросы головы 0
    seen = int((grad.abs().sum(dim=(0, 1)) > 0).sum())  # признаки, которые их двигают
    if seen != C:
        raise AssertionError(f"голова 0 видит {seen} из C = {C} признаков токена")


with torch.random.fork_rng():  # новые слои, не сдвигая случайные числа следующих ячеек
    _ = torch.manual_seed(1)
    slice_layers = [torch.nn.Linear(C // H, 3 * hs).double() for _ in range(H)]
print("параметров в проекции: полной", sum(p.numel() for p in mha.qkv.parameters()), end=" | ")
print("по куску на голову", sum(p.numel() for layer in slice_layers for p in layer.parameters()))
print(tuple(project_each_slice(x, slice_layers)[0].shape))  # (B, H, T, hs): форма верная
run_check("эталон", check_head_sees_all_features, project_and_split)
run_check("проекция на кусок", check_head_sees_all_features, lambda x: project_each_slice(x, slice_layers))

# %% [markdown]
# ## Ошибка 2. Оценки не масштабированы
#
# Без деления на $\sqrt{\mathrm{hs}}$ дисперсия оценок растёт как $\mathrm{hs}$, softmax
# становится острее, и выход расходится с эталоном. Ловит проверка дисперсии из главы 1: для
# запросов и ключей с дисперсией 1 оценки должны иметь дисперсию около 1.


# %%
def check_score_variance(score_fn):
    g = torch.Generator().manual_seed(1)
    q1, k1 = torch.randn(2, 512, 8, hs, generator=g, dtype=torch.float64)  # (N, T, hs) каждый
    variance = score_fn(q1, k1).var().item()
    if not abs(variance - 1) < 0.2:
        raise AssertionError(f"дисперсия оценок {variance:.1f} вместо 1")


def scores_without_scale(q, k):
    return q @ k.transpose(-2, -1)  # (..., T, T), забыли / √hs


def weights_without_scale(q, k):
    return scores_without_scale(q, k).masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)


run_check("с масштабом", check_score_variance, scores_of)
run_check("без масштаба", check_score_variance, scores_without_scale)
run_check("без масштаба, сверка", check_equal, attention(x, weights_fn=weights_without_scale), reference)

# %% [markdown]
# ## Ошибка 3. Softmax не по той оси
#
# Softmax должен идти по оси ключей (последней). По оси батча (0) или голов (1) он смешивает
# независимые последовательности и головы; там, где маска закрыла позицию везде, все оценки равны
# $-\infty$, и softmax делит $0$ на $0$: получается NaN. По оси запросов (−2) в сумме 1 дают
# столбцы, а не строки, и знаменатель собирает будущие запросы: прошлые выходы зависят от
# будущего.


# %%
def weights_softmax_over(dim):
    def weights(q, k):
        scores = scores_of(q, k).masked_fill(~causal, float("-inf"))  # (B, H, T, T)
        return scores.softmax(dim=dim)  # правильно только dim=-1

    return weights


for dim in (0, 1, -2):
    run_check(f"dim={dim}, строки", check_rows_sum_to_one, weights_softmax_over(dim)(q, k))
run_check("dim=-2, каузальность", check_causal, lambda x: attention(x, weights_fn=weights_softmax_over(-2)))

# %% [markdown]
# ## Ошибка 4. Маска после softmax
#
# Если сначала взять softmax по всем ключам, а потом обнулить будущее, знаменатель уже учёл
# будущие ключи: строки в сумме меньше 1, и выход в позиции $t$ зависит от токенов после $t$.
# Маска $-\infty$ ставится **до** softmax (глава 2).


# %%
def weights_mask_after_softmax(q, k):
    weights = scores_of(q, k).softmax(dim=-1)  # (B, H, T, T), все ключи, включая будущие
    return weights * causal  # будущее обнулили слишком поздно


run_check("строки", check_rows_sum_to_one, weights_mask_after_softmax(q, k))
run_check("каузальность", check_causal, lambda x: attention(x, weights_fn=weights_mask_after_softmax))

# %% [markdown]
# ## Ошибки 2–4 на карте внимания
#
# Ошибки 2, 3 и 4 меняют сами веса, поэтому видны на карте: голова 0 первой последовательности,
# правильная и сломанные, в одной цветовой шкале. Без $1/\sqrt{\mathrm{hs}}$ строки острее; при
# softmax по
# запросам в сумме 1 дают столбцы, и последний запрос забирает весь вес последнего ключа; при маске
# после softmax строки тусклее: часть их веса ушла в будущее и была отрезана. Ошибка 5 случается
# после весов, и здесь её не видно.

# %%
variants = {
    "правильно": weights_of,
    "без 1/√hs": weights_without_scale,
    "softmax по запросам": weights_softmax_over(-2),
    "маска после softmax": weights_mask_after_softmax,
}
maps = torch.stack([fn(q, k)[0, 0] for fn in variants.values()]).detach()  # (4, T, T)
for name, w in zip(variants, maps):
    print(f"{name}: суммы строк", [round(s, 2) for s in w.sum(dim=-1).tolist()])
fig, axes = plt.subplots(2, 2, figsize=(5.6, 5.6), layout="constrained")  # 2 x 2: читается и на телефоне
plt.close(fig)  # показать один раз, как значение ячейки
for ax, name, w in zip(axes.flat, variants, maps):
    image = ax.imshow(w.numpy(), vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set(title=name, xlabel="ключ", ylabel="запрос")
fig.colorbar(image, ax=axes.ravel().tolist(), label="вес внимания")
fig.suptitle("Голова 0 последовательности 0")
fig

# %% [markdown]
# ## Ошибка 5. view без transpose при склейке голов
#
# Выход голов имеет форму (B, H, T, hs). `view(B, T, H * hs)` без `transpose(1, 2)` даёт ту же
# форму, что и правильная склейка, но читает память в порядке «голова, позиция»: в строку позиции 0
# попадают позиции 0–3 головы 0. Форма верна, числа перемешаны: совпадение с
# `nn.MultiheadAttention` не проходит, а позиции видят будущее.


# %%
def merge_without_transpose(y):
    return y.view(y.size(0), y.size(2), H * hs)  # (B, H, T, hs) прочитан как (B, T, H*hs): каша


print(tuple(attention(x, merge_fn=merge_without_transpose).shape))  # (B, T, C), форма верна
run_check(
    "сверка с nn.MultiheadAttention", check_equal, attention(x, merge_fn=merge_without_transpose), reference
)
run_check("каузальность", check_causal, lambda x: attention(x, merge_fn=merge_without_transpose))

# %% [markdown]
# ## Ошибка 6. Нет выходной проекции
#
# Склеенные головы сразу отдают наружу. Когда $H\,\mathrm{hs} = C$, форма совпадает, и ошибка
# молчит.
# Внутри этого слоя головы не смешиваются: каждый выходной канал несёт одну голову. Следующий слой
# читает весь остаточный поток и смешивает их уже там, но своё смешивание этот слой потерял. Ловит
# сверка с эталоном. (Если $H\,\mathrm{hs} \ne C$, ту же ошибку раньше поймает проверка формы.)


# %%
def no_projection(y):
    return y  # (B, T, H*hs), mha.proj забыли


print(tuple(attention(x, after_merge=no_projection).shape))  # (B, T, H*hs) == (B, T, C)
y_heads = weights_of(q, k) @ v  # (B, H, T, hs)
y_other = y_heads.clone()
y_other[:, 1] += 1.0  # меняем выход одной головы 1
moved = (merge(y_other) - merge(y_heads)).abs().sum(dim=(0, 1)) > 0  # (H*hs,)
print("без proj голова 1 сдвигает каналы:", moved.nonzero().flatten().tolist())
moved = (mha.proj(merge(y_other)) - mha.proj(merge(y_heads))).abs().sum(dim=(0, 1)) > 0  # (C,)
print("с proj:", int(moved.sum()), "из", C)
run_check("сверка с nn.MultiheadAttention", check_equal, attention(x, after_merge=no_projection), reference)

# %% [markdown]
# ## Ошибка 7. Полносвязная сеть до склейки голов
#
# Полносвязная сеть блока работает с векторами размера $C$, то есть после склейки голов и
# выходной проекции. Применённая к выходу отдельной головы ($\mathrm{hs}$ признаков), она не
# сходится по форме.
# Вставленная между склейкой и проекцией, она запускается, но считает другое.

# %%
ff = FeedForward(emb_size=C, dropout=0.0).double()
expected = ff(attention(x))  # (B, T, C): головы -> склейка -> proj -> сеть
per_head = weights_of(q, k) @ v  # (B, H, T, hs)
try:
    ff(per_head)
except (ValueError, RuntimeError) as err:
    print(f"поймано: {type(err).__name__}, у головы {per_head.size(-1)} признака, сеть ждёт C = {C}")
run_check(
    "сеть между склейкой и proj, сверка",
    check_equal,
    attention(x, after_merge=lambda y: mha.proj(ff(y))),
    expected,
)

# %% [markdown]
# ## Ошибка 8. Нет остаточной связи
#
# Блок без `x + …` теряет прямую дорогу для градиента. Ловят две проверки главы 6: ручной блок
# должен совпадать с `Decoder`, а градиент на входе стека из 8 блоков не должен исчезать
# (отношение норм градиента на входе и на выходе больше 0,5).

# %%
block = Decoder(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0).double().eval()  # post-LN


def check_gradient_reaches_input(step, N=8):
    _ = torch.manual_seed(0)
    blocks = [Decoder(H, C, hs, T, dropout=0.0).double() for _ in range(N)]
    h = x0 = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True)
    g = torch.randn(B, T, C, dtype=torch.float64)
    for b in blocks:
        h = step(b, h)  # (B, T, C)
    (h * g).sum().backward()
    ratio = (x0.grad.norm() / g.norm()).item()
    if not ratio > 0.5:
        raise AssertionError(f"градиент не доходит до входа (отношение норм {ratio:.3f})")


def block_without_residual(b, x):
    x = b.norm1(b.attention(x))  # (B, T, C), нет x + ...
    return b.norm2(b.feed_forward(x))  # (B, T, C)


run_check("Decoder, градиент", check_gradient_reaches_input, lambda b, h: b(h))
run_check("без остаточной связи, градиент", check_gradient_reaches_input, block_without_residual)
run_check("без остаточной связи, сверка с Decoder", check_equal, block_without_residual(block, x), block(x))

# %% [markdown]
# ## Ошибка 9. Нет нормализации слоя
#
# В post-LN-блоке (вариант по умолчанию) выход — это выход LayerNorm: у каждого токена среднее 0
# и стандартное отклонение 1 по признакам (глава 6; при `weight = 1`, `bias = 0`, как в начале).
# Без нормализации эта проверка падает, а остаточный поток растёт от блока к блоку: измерим его
# стандартное отклонение на стеке из 8 блоков.


# %%
def check_normalized(y):
    mean = y.mean(dim=-1).abs().max().item()
    std = (y.std(dim=-1, unbiased=False) - 1).abs().max().item()
    if not (mean < 1e-6 and std < 1e-3):
        raise AssertionError(
            f"токены не нормированы (среднее до {mean:.3f}, ст. откл. отличается от 1 на {std:.3f})"
        )


def block_without_norm(b, x):
    x = x + b.attention(x)  # (B, T, C), нет norm1
    return x + b.feed_forward(x)  # (B, T, C), нет norm2


run_check("Decoder, нормировка", check_normalized, block(x))
run_check("без LayerNorm, нормировка", check_normalized, block_without_norm(block, x))
run_check("без LayerNorm, сверка с Decoder", check_equal, block_without_norm(block, x), block(x))


def stream_std(step, N=8):
    _ = torch.manual_seed(0)
    blocks = [Decoder(H, C, hs, T, dropout=0.0).double() for _ in range(N)]
    h, stds = x, []
    with torch.no_grad():
        for b in blocks:
            h = step(b, h)  # (B, T, C)
            stds.append(round(h.std().item(), 2))
    return stds


print("отклонение потока после блоков 1…8, Decoder:    ", stream_std(lambda b, h: b(h)))
print("отклонение потока после блоков 1…8, без LayerNorm:", stream_std(block_without_norm))

# %% [markdown]
# ### Случай pre-LN
#
# У правильного pre-LN-блока (`norm_first=True`) выход и должен быть ненормированным, поэтому
# проверка выше поднимает на нём ложную тревогу и пропущенную нормализацию там найти не может. В
# pre-LN нормирован **вход каждого подслоя**: его ловим хуками перед `forward` (`register_forward_pre_hook`) на `attention` и
# `feed_forward`. Сломанный вариант забывает `norm1`.

# %%
pre_block = Decoder(H, C, hs, T, dropout=0.0, norm_first=True).double().eval()


def check_sublayer_inputs_normalized(forward):
    inputs = []
    hooks = [
        m.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
        for m in (pre_block.attention, pre_block.feed_forward)
    ]
    try:
        forward(pre_block, x)
    finally:
        for hook in hooks:
            hook.remove()
    for sublayer_input in inputs:  # (B, T, C) каждый
        check_normalized(sublayer_input)


def pre_ln_without_norm1(b, x):
    x = x + b.attention(x)  # (B, T, C), norm1 забыт
    return x + b.feed_forward(b.norm2(x))  # (B, T, C)


run_check("pre-LN Decoder, нормировка выхода", check_normalized, pre_block(x))
run_check("pre-LN Decoder, входы подслоёв", check_sublayer_inputs_normalized, lambda b, x: b(x))
run_check("pre-LN без norm1, входы подслоёв", check_sublayer_inputs_normalized, pre_ln_without_norm1)

# %% [markdown]
# ## Ошибка 10. Нет функции активации
#
# Без ReLU два слоя полносвязной сети — один линейный слой $W = W_2 W_1$, $b = W_2 b_1 + b_2$
# (глава 6).
# Проверка строит этот слой из весов `up` и `down` и требует, чтобы сеть от него отличалась.


# %%
def check_not_one_linear_layer(fn):
    W = ff.down.weight @ ff.up.weight  # (C, C)
    b = ff.down.weight @ ff.up.bias + ff.down.bias  # (C,)
    diff = (fn(x) - (x @ W.T + b)).abs().max().item()
    if not diff > 1e-6:
        raise AssertionError(f"сеть схлопнулась в один линейный слой (разница {diff:.3f})")


def ff_without_activation(x):
    return ff.dropout(ff.down(ff.up(x)))  # (B, T, C), ReLU забыли


run_check("FeedForward", check_not_one_linear_layer, ff)
run_check("без ReLU", check_not_one_linear_layer, ff_without_activation)

# %% [markdown]
# ## Итог
#
# Каждую из десяти ошибок поймала проверка из предыдущих глав: сумма строк весов, каузальность,
# дисперсия оценок, сверка с эталоном, градиент на входе стека, нормировка токенов и проверка на
# схлопывание в один линейный слой. Сводная таблица — в
# [тексте главы](../../chapters/07-common-mistakes/); дальше — вопросы
# [собеседования](../../chapters/08-interview/).

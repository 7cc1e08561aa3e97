# %% [markdown]
# # Блок трансформера: блокнот
#
# Собираем блок декодера из частей: полносвязная сеть с функцией активации, нормализация слоя
# (LayerNorm), остаточные связи и многоголовое внимание. Проверяем численно, что два линейных слоя
# без активации схлопываются в один, и сравниваем два порядка нормализации, post-LN и pre-LN,
# на одних и тех же весах. Текст главы: [Блок трансформера](../../chapters/06-transformer-block/).
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
# ## Размеры и вход
#
# Две последовательности по 6 токенов, $C = 16$, 4 головы по 4. Всё в float64, чтобы сравнивать
# с жёстким допуском. Dropout везде 0: сравниваем детерминированные вычисления.

# %%
import torch
import torch.nn as nn

from simple_llm import Decoder, FeedForward

_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 6, 16, 4, 4
x = torch.randn(B, T, C, dtype=torch.float64)
print(tuple(x.shape))  # (B, T, C)

# %% [markdown]
# ## Полносвязная сеть
#
# `FeedForward` обрабатывает каждую позицию отдельно: расширяет $C \to 4C$ (`up`), применяет ReLU,
# сжимает обратно $4C \to C$ (`down`) и применяет dropout. Веса `nn.Linear` хранятся как
# `(out_features, in_features)`.

# %%
ff = FeedForward(emb_size=C, dropout=0.0).double()
print("up:  ", tuple(ff.up.weight.shape))  # (4*C, C)
print("down:", tuple(ff.down.weight.shape))  # (C, 4*C)
print("ff(x):", tuple(ff(x).shape))  # (B, T, C)

# %% [markdown]
# ### Та же сеть вручную
#
# $$y = W_2 \operatorname{ReLU}(W_1 x + b_1) + b_2,$$
#
# где $W_1, b_1$ — это `up`, а $W_2, b_2$ — это `down`.

# %%
W1, b1 = ff.up.weight, ff.up.bias  # (4*C, C), (4*C,)
W2, b2 = ff.down.weight, ff.down.bias  # (C, 4*C), (C,)
hidden = torch.relu(x @ W1.T + b1)  # (B, T, 4*C)
by_hand = hidden @ W2.T + b2  # (B, T, C)
torch.testing.assert_close(by_hand, ff(x))
print("ручная сеть совпадает с FeedForward:", torch.allclose(by_hand, ff(x)), tuple(by_hand.shape))

# %% [markdown]
# ## Без активации два слоя схлопываются в один
#
# Уберём ReLU:
#
# $$W_2 (W_1 x + b_1) + b_2 = (W_2 W_1)\,x + (W_2 b_1 + b_2).$$
#
# Это один линейный слой с матрицей $W = W_2 W_1$ формы $(C, C)$ и смещением $b = W_2 b_1 + b_2$.
# Проверим на числах.

# %%
W = W2 @ W1  # (C, C)
b = W2 @ b1 + b2  # (C,)
two_layers = ff.down(ff.up(x))  # (B, T, C), без ReLU
one_layer = x @ W.T + b  # (B, T, C)
torch.testing.assert_close(two_layers, one_layer)
print("без ReLU: два слоя == один слой с W", tuple(W.shape), torch.allclose(two_layers, one_layer))

# %% [markdown]
# ### С ReLU — уже нет
#
# С функцией активации результат с одним линейным слоем не совпадает: ReLU обнуляет разные
# координаты для разных токенов, и никакая одна матрица этого не повторит.

# %%
diff = (ff(x) - one_layer).abs().max().item()
print(f"с ReLU: наибольшая разница с одним слоем = {diff:.3f}")
print("параметров в FeedForward:", sum(p.numel() for p in ff.parameters()))
print("параметров в одном слое C×C:", W.numel() + b.numel())

# %% [markdown]
# ## Нормализация слоя
#
# LayerNorm нормирует каждый токен по его $C$ признакам: вычитает среднее, делит на стандартное
# отклонение (смещённое, с `eps` под корнем), затем умножает признак $j$ на `weight[j]` и
# прибавляет `bias[j]` (в начале это 1 и 0):
#
# $$\operatorname{LN}(x)_j = \gamma_j\,\frac{x_j - \mu}{\sqrt{\sigma^2 + \varepsilon}} + \beta_j,$$
#
# где $\mu$ и $\sigma^2$ — среднее и дисперсия по признакам токена.

# %%
ln = nn.LayerNorm(C).double()
mean = x.mean(dim=-1, keepdim=True)  # (B, T, 1)
var = x.var(dim=-1, unbiased=False, keepdim=True)  # (B, T, 1)
normed = (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias  # (B, T, C)
torch.testing.assert_close(normed, ln(x))
print(f"среднее по признакам: {normed.mean(dim=-1).abs().max().item():.3f}")
print(f"стандартное отклонение: {normed.std(dim=-1, unbiased=False).mean().item():.3f}")

# %% [markdown]
# Среднее 0 и стандартное отклонение 1 получаются, только пока $\gamma = 1$ и $\beta = 0$, как в
# начале. После обучения $\gamma$ и $\beta$ у разных признаков разные: это покомпонентное аффинное
# преобразование после нормализации, а не заданные среднее и масштаб токена. Когда $\gamma_j$ и
# $\beta_j$ у каждого признака свои, средние и отклонения токенов по признакам разбегаются; точно
# выполняется другое: $(y - \beta)/\gamma$ — это нормированный токен.

# %%
scaled = nn.LayerNorm(C).double()
with torch.no_grad():
    scaled.weight.copy_(torch.linspace(0.5, 2.0, C))  # gamma: у каждого признака свой масштаб
    scaled.bias.copy_(torch.linspace(-1.0, 1.0, C))  # beta: у каждого признака свой сдвиг
y = scaled(x)  # (B, T, C)
x_hat = (x - mean) / torch.sqrt(var + scaled.eps)  # (B, T, C): нормированный токен
torch.testing.assert_close(y, x_hat * scaled.weight + scaled.bias)
token_mean, token_std = y.mean(dim=-1), y.std(dim=-1, unbiased=False)  # (B, T) каждый
print(f"по токенам, среднее по признакам: от {token_mean.min().item():.3f} до {token_mean.max().item():.3f}")
print(f"по токенам, стандартное отклонение: от {token_std.min().item():.3f} до {token_std.max().item():.3f}")
back = (y - scaled.bias) / scaled.weight  # (B, T, C)
print(
    f"(y - beta) / gamma: наибольшее |среднее| {back.mean(dim=-1).abs().max().item():.3f},"
    f" среднее отклонение {back.std(dim=-1, unbiased=False).mean().item():.3f}"
)

# %% [markdown]
# ## Остаточная связь
#
# Остаточная связь прибавляет выход подслоя к его входу: $x + f(x)$. Если подслой выдаёт нули,
# вход проходит насквозь без изменений. Проверим: обнулим `down` у копии сети.

# %%
silent = FeedForward(emb_size=C, dropout=0.0).double()
with torch.no_grad():
    silent.down.weight.zero_()
    silent.down.bias.zero_()
torch.testing.assert_close(x + silent(x), x)
print("x + f(x) == x, когда f выдаёт нули:", torch.equal(x + silent(x), x))

# %% [markdown]
# ## Post-LN: вариант по умолчанию
#
# `Decoder` по умолчанию (`norm_first=False`) — post-LN, как в исходном коде проекта и в
# оригинальном трансформере: нормализация стоит **после** сложения с остаточной связью.
#
# ```mermaid
# flowchart LR
#   X[x] --> A[Внимание] --> S1(("+")) --> N1[LayerNorm] --> F[Полносвязная сеть] --> S2(("+")) --> N2[LayerNorm] --> Y[выход]
#   X --> S1
#   N1 --> S2
# ```

# %%
post = Decoder(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0).double().eval()
print("norm_first по умолчанию:", post.norm_first)


def post_ln(block, x):
    x = block.norm1(x + block.attention(x))  # (B, T, C)
    return block.norm2(x + block.feed_forward(x))  # (B, T, C)


torch.testing.assert_close(post_ln(post, x), post(x))
print("ручной post-LN совпадает с Decoder:", torch.allclose(post_ln(post, x), post(x)), tuple(post(x).shape))

# %% [markdown]
# ## Pre-LN на тех же весах
#
# Pre-LN (`norm_first=True`) нормирует вход подслоя, а остаточная связь идёт в обход
# нормализации. Загрузим в pre-LN-блок `state_dict` post-LN-блока: веса одни и те же, меняется
# только порядок операций.
#
# ```mermaid
# flowchart LR
#   X[x] --> N1[LayerNorm] --> A[Внимание] --> S1(("+")) --> N2[LayerNorm] --> F[Полносвязная сеть] --> S2(("+")) --> Y[выход]
#   X --> S1
#   S1 --> S2
# ```

# %%
pre = Decoder(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0, norm_first=True)
pre = pre.double().eval()
pre.load_state_dict(post.state_dict())


def pre_ln(block, x):
    x = x + block.attention(block.norm1(x))  # (B, T, C)
    return x + block.feed_forward(block.norm2(x))  # (B, T, C)


torch.testing.assert_close(pre_ln(pre, x), pre(x))
print("ручной pre-LN совпадает с Decoder:", torch.allclose(pre_ln(pre, x), pre(x)), tuple(pre(x).shape))
gap = (post(x) - pre(x)).abs().max().item()
print(f"post-LN и pre-LN на одних весах, наибольшая разница: {gap:.3f}")

# %% [markdown]
# ## Градиент на входе стека блоков
#
# У pre-LN остаточный поток — прямая дорога от выхода к входу: градиент проходит по ней, не
# задевая ни одной нормализации. У post-LN на этой дороге стоит LayerNorm каждого блока. Соберём
# стек из $N$ необученных блоков, возьмём случайную линейную функцию потерь и измерим норму
# градиента по входу, делённую на норму градиента на выходе, для глубин от 1 до 32.


# %%
def run_stack(norm_first, N, final_norm=False):
    """N необученных блоков и случайная линейная функция потерь; возвращает блоки, поток и g."""
    _ = torch.manual_seed(0)
    blocks = [Decoder(H, C, hs, T, dropout=0.0, norm_first=norm_first).double() for _ in range(N)]
    x = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True)
    g = torch.randn(B, T, C, dtype=torch.float64)  # градиент, пришедший на выход
    stream = [x]  # остаточный поток: вход, затем выход каждого блока
    for block in blocks:
        stream.append(block(stream[-1]))  # (B, T, C)
        stream[-1].retain_grad()
    out = nn.functional.layer_norm(stream[-1], (C,)) if final_norm else stream[-1]  # (B, T, C)
    (out * g).sum().backward()
    return blocks, stream, g


def input_grad(norm_first, N):
    _, stream, g = run_stack(norm_first, N)
    return (stream[0].grad.norm() / g.norm()).item()


for N in (1, 2, 4, 8, 16, 32):
    print(f"N = {N:2d}: post-LN {input_grad(False, N):.3f}, pre-LN {input_grad(True, N):.3f}")

# %% [markdown]
# У post-LN отношение понемногу падает, причём не монотонно: в необученном стеке градиент по пути
# к входу теряет немного. У pre-LN отношение растёт.
#
# ## Почему у pre-LN градиент растёт
#
# Блок pre-LN передаёт градиент по тождественному пути и добавляет к нему часть, прошедшую через
# свою ветвь, поэтому его усиление (норма градиента на входе блока, делённая на норму на выходе)
# в среднем больше 1, хотя и не у каждого блока, а усиления блоков перемножаются. Поток pre-LN
# никто не нормирует: каждый блок прибавляет к нему свой выход, и стандартное отклонение потока
# растёт с глубиной. Каждая ветвь читает поток через LayerNorm, который делит на это отклонение,
# поэтому чем глубже блок, тем меньше вклад его ветви и тем ближе его усиление к 1. У post-LN
# поток нормируется после каждого блока.

# %%
_, stream, g = run_stack(True, 32)
std = [h.std().item() for h in stream]  # после 0, 1, ..., 32 блоков
gain = [(stream[i].grad.norm() / stream[i + 1].grad.norm()).item() for i in range(32)]  # блок i + 1
print("pre-LN, отклонение потока после 0, 8, 16, 24, 32 блоков:", [round(s, 2) for s in std[::8]])
print("pre-LN, усиление блоков 1, 2, 4, 8, 16, 32:", [round(gain[i - 1], 3) for i in (1, 2, 4, 8, 16, 32)])
print(f"pre-LN, произведение 32 усилений: {torch.tensor(gain).prod().item():.3f}")
_, post_stream, _ = run_stack(False, 32)
print(
    "post-LN, отклонение потока после 0, 8, 16, 24, 32 блоков:",
    [round(h.std().item(), 2) for h in post_stream[::8]],
)
early, late = sum(gain[:8]) / 8, sum(gain[-8:]) / 8
print("pre-LN, среднее усиление блоков 1–8 и 25–32:", [round(early, 3), round(late, 3)])
assert std[-1] > 2 * std[0] and early > late

# %% [markdown]
# ## Градиент блок за блоком
#
# Те же два стека по 32 блока, но теперь градиент берём в каждой точке остаточного потока: его
# норму после $k$ блоков делим на его норму на выходе ($k = 32$). При $k = 0$ получаются значения
# из таблицы выше для $N = 32$. Вертикальная ось логарифмическая, потому что усиления блоков
# перемножаются.

# %%
import matplotlib.pyplot as plt

# показывать рисунки (Figure) прямо в блокноте
# %matplotlib inline

depth = list(range(33))  # после 0, 1, ..., 32 блоков
post_norm = [(h.grad.norm() / post_stream[-1].grad.norm()).item() for h in post_stream]
pre_norm = [(h.grad.norm() / stream[-1].grad.norm()).item() for h in stream]
print("после 0, 8, 16, 24, 32 блоков, post-LN:", [round(v, 3) for v in post_norm[::8]])
print("после 0, 8, 16, 24, 32 блоков, pre-LN: ", [round(v, 3) for v in pre_norm[::8]])
fig, ax = plt.subplots(figsize=(4.8, 3.4), layout="constrained")
ax.plot(depth, post_norm, "o-", markersize=3, label="post-LN")
ax.plot(depth, pre_norm, "s-", markersize=3, label="pre-LN")
ax.axhline(1.0, color="grey", linewidth=0.8)
ax.set(
    yscale="log",
    xlabel="k: блоков от входа",
    ylabel="норма градиента / норма на выходе",
    title="Градиент вдоль стека из 32 блоков",
)
ax.set_xticks(range(0, 33, 8))
ax.set_yticks([0.5, 1, 2, 3], ["0,5", "1", "2", "3"])
ax.minorticks_off()
ax.set_ylim(0.45, 3.2)
ax.legend()
ax.grid(True, alpha=0.3)
plt.close(fig)
fig

# %% [markdown]
# ## Градиенты у выхода: зачем post-LN разогрев скорости обучения
#
# Обычно цитируют другой результат (Xiong et al., 2020) — о параметрах у выхода. У необученной
# модели градиент последнего блока post-LN с глубиной не уменьшается. У pre-LN с завершающим
# LayerNorm после последнего блока (как в GPT-2) — уменьшается: завершающий LayerNorm делит на
# стандартное отклонение потока, а оно растёт с глубиной. Поэтому скорость обучения, подходящая
# для pre-LN, у выхода глубокой post-LN-модели даёт слишком большие шаги, и post-LN обучают с
# разогревом скорости обучения: она начинается с малой и растёт в первые шаги. В экспериментах
# Xiong et al. pre-LN хорошо обучался и без разогрева; большие pre-LN-модели, такие как GPT-3 и
# LLaMA, всё равно обучают с ним.


# %%
def last_block_grad(norm_first, N):
    blocks, _, _ = run_stack(norm_first, N, final_norm=norm_first)  # pre-LN завершает LayerNorm
    return torch.cat([p.grad.flatten() for p in blocks[-1].parameters()]).norm().item()


last = {N: (last_block_grad(False, N), last_block_grad(True, N)) for N in (1, 2, 4, 8, 16, 32)}
for N, (post_grad, pre_grad) in last.items():
    print(
        f"N = {N:2d}: последний блок, post-LN {post_grad:.1f}, pre-LN с завершающим LayerNorm {pre_grad:.1f}"
    )
assert last[32][1] < 0.6 * last[1][1] and last[32][0] > 0.8 * last[1][0]

# %% [markdown]
# ## Число параметров блока
#
# Внимание: `qkv` ($C \to 3H\,\mathrm{hs}$) и `proj` ($H\,\mathrm{hs} \to C$) со смещениями.
# Полносвязная сеть: $C \to 4C \to C$ со смещениями. Две нормализации: по `weight` и `bias`
# длины $C$.

# %%
attention = (C * 3 * H * hs + 3 * H * hs) + (H * hs * C + C)
feed_forward = (C * 4 * C + 4 * C) + (4 * C * C + C)
norms = 2 * (C + C)
total = attention + feed_forward + norms
assert total == sum(p.numel() for p in post.parameters())
print(f"внимание {attention} + сеть {feed_forward} + нормализации {norms} = {total}")

# %% [markdown]
# ## Итог
#
# - Без функции активации полносвязная сеть — один линейный слой $W = W_2 W_1$,
#   $b = W_2 b_1 + b_2$.
# - LayerNorm нормирует каждый токен по его признакам; $\gamma$ и $\beta$ — покомпонентное
#   аффинное преобразование после нормализации.
# - `Decoder` по умолчанию post-LN (`norm_first=False`); `norm_first=True` даёт pre-LN на тех же
#   параметрах, и обе ручные сборки совпадают с пакетом.
# - В необученном post-LN-стеке градиент на входе с глубиной понемногу падает (0,714 при $N = 32$),
#   в pre-LN растёт (2,617): каждый блок добавляет вклад своей ветви, тем меньший, чем сильнее
#   вырос ненормированный поток.
# - У выхода градиент post-LN с глубиной не уменьшается, а у pre-LN (с завершающим LayerNorm, как
#   в GPT-2) уменьшается: поэтому post-LN нужен разогрев скорости обучения. В экспериментах Xiong
#   et al. pre-LN обходился без него; большие pre-LN-модели всё равно его используют.
#
# Дальше: [типичные ошибки](../../chapters/07-common-mistakes/) — каждая из них ломает одну из
# проверок этой и предыдущих глав.

# %% [markdown]
# # Блок трансформера: блокнот
#
# Собираем блок декодера из частей: полносвязная сеть с функцией активации, нормализация слоя
# (LayerNorm), остаточные связи, многоголовое внимание. Проверяем численно, что два линейных слоя
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
# Две последовательности по 6 токенов, `C = 16`, 4 головы по 4. Всё в float64, чтобы сравнивать
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
# `FeedForward` обрабатывает каждую позицию отдельно: расширяет `C → 4·C` (`up`), применяет ReLU,
# сжимает обратно `4·C → C` (`down`) и применяет dropout. Веса `nn.Linear` хранятся как
# `(out_features, in_features)`.

# %%
ff = FeedForward(emb_size=C, dropout=0.0).double()
print("up:  ", tuple(ff.up.weight.shape))  # (4*C, C)
print("down:", tuple(ff.down.weight.shape))  # (C, 4*C)
print("ff(x):", tuple(ff(x).shape))  # (B, T, C)

# %% [markdown]
# ### Та же сеть руками
#
# `y = W₂·relu(W₁·x + b₁) + b₂`, где `W₁, b₁` — это `up`, а `W₂, b₂` — это `down`.

# %%
W1, b1 = ff.up.weight, ff.up.bias  # (4*C, C), (4*C,)
W2, b2 = ff.down.weight, ff.down.bias  # (C, 4*C), (C,)
hidden = torch.relu(x @ W1.T + b1)  # (B, T, 4*C)
by_hand = hidden @ W2.T + b2  # (B, T, C)
torch.testing.assert_close(by_hand, ff(x))
print("ручная сеть совпадает с FeedForward:", tuple(by_hand.shape))  # (B, T, C)

# %% [markdown]
# ## Без активации два слоя схлопываются в один
#
# Уберём ReLU: `W₂·(W₁·x + b₁) + b₂ = (W₂·W₁)·x + (W₂·b₁ + b₂)`. Это один линейный слой с
# матрицей `W = W₂·W₁` размера `(C, C)` и смещением `b = W₂·b₁ + b₂`. Проверим на числах.

# %%
W = W2 @ W1  # (C, C)
b = W2 @ b1 + b2  # (C,)
two_layers = ff.down(ff.up(x))  # (B, T, C), без ReLU
one_layer = x @ W.T + b  # (B, T, C)
torch.testing.assert_close(two_layers, one_layer)
print("без ReLU: два слоя == один слой с W", tuple(W.shape))  # (C, C)

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
# LayerNorm нормирует каждый токен по его `C` признакам: вычитает среднее, делит на
# стандартное отклонение (смещённое, с `eps` внутри корня), затем умножает на `weight` и
# прибавляет `bias` (в начале это 1 и 0).

# %%
ln = nn.LayerNorm(C).double()
mean = x.mean(dim=-1, keepdim=True)  # (B, T, 1)
var = x.var(dim=-1, unbiased=False, keepdim=True)  # (B, T, 1)
normed = (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias  # (B, T, C)
torch.testing.assert_close(normed, ln(x))
print(f"среднее по признакам: {normed.mean(dim=-1).abs().max().item():.3f}")
print(f"стандартное отклонение: {normed.std(dim=-1, unbiased=False).mean().item():.3f}")

# %% [markdown]
# ## Остаточная связь
#
# Остаточная связь прибавляет выход подслоя к его входу: `x + f(x)`. Если подслой выдаёт нули,
# вход проходит насквозь без изменений. Проверим: обнулим `down` у копии сети.

# %%
silent = FeedForward(emb_size=C, dropout=0.0).double()
with torch.no_grad():
    silent.down.weight.zero_()
    silent.down.bias.zero_()
torch.testing.assert_close(x + silent(x), x)
print("x + f(x) == x, когда f выдаёт нули:", tuple((x + silent(x)).shape))  # (B, T, C)

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
print("ручной post-LN совпадает с Decoder:", tuple(post(x).shape))  # (B, T, C)

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
print("ручной pre-LN совпадает с Decoder:", tuple(pre(x).shape))  # (B, T, C)
gap = (post(x) - pre(x)).abs().max().item()
print(f"post-LN и pre-LN на одних весах, наибольшая разница: {gap:.3f}")

# %% [markdown]
# ## Градиент на входе стопки блоков
#
# Почему в GPT-2 и большинстве современных моделей pre-LN? У pre-LN остаточный поток — прямая
# дорога от выхода к входу: градиент проходит по ней, не задевая ни одной нормализации. У post-LN
# на этой дороге стоит LayerNorm каждого блока, и с глубиной градиент у входа слабеет. Соберём
# стопку из N блоков, возьмём случайную линейную функцию потерь и измерим норму градиента по
# входу, делённую на норму градиента на выходе (строка N = 8 — стопка из восьми блоков).


# %%
def input_grad(norm_first, N):
    _ = torch.manual_seed(0)
    stack = nn.Sequential(
        *[Decoder(H, C, hs, T, dropout=0.0, norm_first=norm_first) for _ in range(N)]
    ).double()
    x = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True)
    g = torch.randn(B, T, C, dtype=torch.float64)  # градиент, пришедший на выход
    (stack(x) * g).sum().backward()
    return (x.grad.norm() / g.norm()).item()


for N in (1, 4, 8, 16, 32):
    print(f"N = {N:2d}: post-LN {input_grad(False, N):.3f}, pre-LN {input_grad(True, N):.3f}")

# %% [markdown]
# ## Число параметров блока
#
# Внимание: `qkv` (`C → 3·H·hs`) и `proj` (`H·hs → C`) со смещениями. Полносвязная сеть:
# `C → 4·C → C` со смещениями. Две нормализации: по `weight` и `bias` длины `C`.

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
# - Без функции активации полносвязная сеть — один линейный слой `W = W₂·W₁`, `b = W₂·b₁ + b₂`.
# - `Decoder` по умолчанию post-LN (`norm_first=False`); `norm_first=True` даёт pre-LN на тех же
#   параметрах, и обе ручные сборки совпадают с пакетом.
# - У post-LN градиент на входе стопки слабеет с глубиной (0,714 при N = 32), у pre-LN — нет:
#   он идёт по остаточному потоку. Зато выход pre-LN-стопки не нормирован, поэтому GPT-2 ставит
#   после последнего блока ещё один LayerNorm.
#
# Дальше: [типичные ошибки](../../chapters/07-common-mistakes/) — каждая из них ломает одну из
# проверок этой и предыдущих глав.

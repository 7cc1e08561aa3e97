# %% [markdown]
# # Вопросы с собеседования: блокнот
#
# Каждый раздел отвечает на один вопрос [главы](../../chapters/08-interview/) работающим кодом: ответ не пересказан, а проверен `assert`-ом. Номера разделов совпадают с номерами вопросов на странице.
#
# Легенда форм: B — батч, T — длина последовательности, C — размер эмбеддинга (`emb_size`), H — число голов (`num_heads`), hs — размер головы (`head_size`).

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
# Один модуль на весь блокнот: $C = 16$, $H = 4$, $\mathrm{hs} = 4$, так что $H\,\mathrm{hs} = C$. Считаем во float64, чтобы сравнения были точными, и выключаем dropout.

# %%
import torch
from torch.utils.flop_counter import FlopCounterMode

from simple_llm import Decoder, FeedForward, MultiHeadAttention, padding_mask

torch.set_default_dtype(torch.float64)
_ = torch.manual_seed(0)
B, T, C, H, hs = 2, 5, 16, 4, 4
mha = MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=8, dropout=0.0)
x = torch.randn(B, T, C)
print(tuple(x.shape))  # (B, T, C)

# %% [markdown]
# ## 1. Формы на каждом шаге
#
# Сначала проекции, потом деление на головы. Одна матрица `qkv` даёт Q, K и V всех голов сразу; `view` и `permute` ничего не считают, только переставляют оси.

# %%
qkv = mha.qkv(x)
print("qkv:", tuple(qkv.shape))  # (B, T, 3·H·hs)
q, k, v = qkv.view(B, T, 3, H, hs).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, hs)
print("q, k, v:", tuple(q.shape))  # (B, H, T, hs)

# %% [markdown]
# Затем внимание в каждой голове, склейка голов и выходная проекция. Итог совпадает с модулем пакета.

# %%
causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
scores = q @ k.transpose(-2, -1) / hs**0.5  # (B, H, T, T)
weights = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
heads = weights @ v  # (B, H, T, hs)
concat = heads.transpose(1, 2).reshape(B, T, H * hs)  # (B, T, H·hs)
out = mha.proj(concat)  # (B, T, C)
for name, tensor in [("scores", scores), ("heads", heads), ("concat", concat), ("out", out)]:
    print(f"{name}: {tuple(tensor.shape)}")
torch.testing.assert_close(out, mha(x))
print("вручную == MultiHeadAttention:", torch.allclose(out, mha(x)))

# %% [markdown]
# ## 2. Сколько параметров
#
# Проекции Q, K, V и выходная проекция — четыре матрицы $C \times C$ и четыре вектора смещений длины $C$: $4C^2 + 4C$. У `nn.MultiheadAttention` столько же.

# %%
n_qkv = mha.qkv.weight.numel() + mha.qkv.bias.numel()
n_proj = mha.proj.weight.numel() + mha.proj.bias.numel()
n_ours = sum(p.numel() for p in mha.parameters())
n_torch = sum(p.numel() for p in torch.nn.MultiheadAttention(C, H).parameters())
print(f"qkv: {n_qkv} (3·C² + 3·C), proj: {n_proj} (C² + C)")
print(f"всего: {n_ours}, 4·C² + 4·C = {4 * C * C + 4 * C}, nn.MultiheadAttention: {n_torch}")
assert n_ours == 4 * C * C + 4 * C == n_torch

# %% [markdown]
# ## 3. Если emb_size не делится на num_heads
#
# `head_size` — размер Q, K и V одной головы, отдельный параметр, не обязательно равный $C/H$. simple_llm нарочно допускает $H\,\mathrm{hs} \ne C$: `qkv` проецирует $C \to 3H\,\mathrm{hs}$, а `proj` возвращает $H\,\mathrm{hs} \to C$. Пример: $C = 10$, $H = 3$, $\mathrm{hs} = 4$.

# %%
odd = MultiHeadAttention(num_heads=3, emb_size=10, head_size=4, max_seq_len=8, dropout=0.0)
x10 = torch.randn(B, T, 10)  # (B, T, C)
print("qkv.weight:", tuple(odd.qkv.weight.shape), " proj.weight:", tuple(odd.proj.weight.shape))
print("веса:", tuple(odd.get_attention_weights(x10).shape))  # (B, H, T, T)
print("выход:", tuple(odd(x10).shape))  # (B, T, C)
n_odd = sum(p.numel() for p in odd.parameters())
assert n_odd == 10 * 36 + 36 + 12 * 10 + 10  # C·3·H·hs + 3·H·hs + H·hs·C + C
print("параметров:", n_odd)

# %% [markdown]
# В `nn.MultiheadAttention` размер головы всегда равен `embed_dim // num_heads`, поэтому `to_torch()` такой модуль не переносит и называет числа:

# %%
try:
    odd.to_torch()
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## 4. Зачем выходная проекция
#
# После склейки каждый канал принадлежит одной голове. Выходная проекция $W_o$ формы $C \times H\,\mathrm{hs}$ смешивает головы: её выход — сумма вкладов голов, каждая через свой блок столбцов $W_o$,
#
# $$\text{выход} = \sum_{h} \text{голова}_h\, W_o^{(h)\top} + b.$$
#
# Она же возвращает размер $H\,\mathrm{hs}$ к $C$.

# %%
W_o = mha.proj.weight  # (C, H·hs)
parts = [mha.head(h)(x) @ W_o[:, h * hs : (h + 1) * hs].T for h in range(H)]  # H x (B, T, C)
torch.testing.assert_close(sum(parts) + mha.proj.bias, mha(x))
print(
    "выход = сумма по h: голова_h @ W_o[:, блок h].T + b:", torch.allclose(sum(parts) + mha.proj.bias, mha(x))
)
print("без проекции каналы 0..hs-1 — это голова 0:", torch.equal(concat[..., :hs], heads[:, 0]))

# %% [markdown]
# ## 5. Почему softmax по оси ключей
#
# Строка $t$ весов — распределение внимания запроса $t$ по ключам: сумма по ключам (последняя ось) равна 1. Softmax по оси запросов нормировал бы столбцы, и строки перестали бы быть распределениями.

# %%
w = mha.get_attention_weights(x)  # (B, H, T, T)
torch.testing.assert_close(w, weights)
torch.testing.assert_close(w.sum(-1), torch.ones(B, H, T))
print("по ключам, суммы строк:  ", [round(s, 3) for s in w[0, 0].sum(-1).tolist()])
wrong = scores.masked_fill(~causal, float("-inf")).softmax(dim=-2)  # (B, H, T, T)
print("по запросам, суммы строк:", [round(s, 3) for s in wrong[0, 0].sum(-1).tolist()])

# %% [markdown]
# ## 6. Зачем делить на корень из hs
#
# Если компоненты $q$ и $k$ независимы, со средним 0 и дисперсией 1, то $q \cdot k$ — сумма $\mathrm{hs}$ слагаемых, и его дисперсия равна $\mathrm{hs}$. Без деления softmax по 16 ключам почти весь вес отдаёт одному ключу; после деления на $\sqrt{\mathrm{hs}}$ дисперсия около 1 при любом $\mathrm{hs}$.

# %%
g = torch.Generator().manual_seed(0)
for d in (4, 16, 64, 256):
    q_ = torch.randn(1000, 1, d, generator=g)  # (N, 1, hs)
    k_ = torch.randn(1000, 16, d, generator=g)  # (N, 16, hs)
    dots = (q_ * k_).sum(-1)  # (N, 16)
    scaled = dots / d**0.5
    top, top_scaled = dots.softmax(-1).amax(-1).mean(), scaled.softmax(-1).amax(-1).mean()
    print(
        f"hs={d:3d}: дисперсия {dots.var():5.1f} -> {scaled.var():.2f}, наибольший вес {top:.2f} -> {top_scaled:.2f}"
    )
    assert abs(scaled.var() - 1) < 0.1

# %% [markdown]
# Что насыщение делает с градиентом? Градиент, который доходит до запроса, — это матрица Якоби softmax, умноженная на ключи: $\partial p/\partial q = (\operatorname{diag}(p) - p\,p^\top)\,K/s$, где $s = \sqrt{\mathrm{hs}}$, а без масштаба $s = 1$. Измерим его норму для 1000 запросов, у каждого по 16 ключей, и посмотрим на медиану и среднее.

# %%
g = torch.Generator().manual_seed(0)
grad_norms = {}
for d in (4, 64, 256, 1024):
    q_ = torch.randn(1000, 1, d, generator=g)  # (N, 1, hs)
    k_ = torch.randn(1000, 16, d, generator=g)  # (N, 16, hs)
    for name, s in (("no scale", 1.0), ("scaled", d**0.5)):
        p = ((q_ * k_).sum(-1) / s).softmax(-1)  # (N, 16)
        jacobian = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]) @ k_ / s  # (N, 16, hs): dp/dq
        grad_norms[name, d] = jacobian.flatten(1).norm(dim=1)  # (N,)
for d in (4, 64, 256, 1024):
    raw, scaled = grad_norms["no scale", d], grad_norms["scaled", d]
    print(
        f"hs={d:4d}: без масштаба медиана {raw.median():.2g}, среднее {raw.mean():.2g}, доля меньше 1e-3 {(raw < 1e-3).double().mean():.2f}"
        f" | с масштабом медиана {scaled.median():.2f}, среднее {scaled.mean():.2f}"
    )
raw = grad_norms["no scale", 1024]
assert raw.median() < 0.01 < 1 < raw.mean() and (raw < 1e-3).double().mean() > 0.4

# %% [markdown]
# Без масштаба типичный градиент с ростом $\mathrm{hs}$ действительно исчезает: медиана падает с 0,58 примерно до $10^{-3}$, и при $\mathrm{hs} = 1024$ у половины строк градиент меньше $10^{-3}$. А среднее не падает, а растёт: в редких строках, где две оценки почти равны, градиент очень велик. Поэтому без масштаба обучение становится не столько медленным, сколько неровным. С масштабом и медиана, и среднее держатся около 0,3 при любом $\mathrm{hs}$. Vaswani et al. (2017) об этом эффекте лишь «подозревают»; здесь он измерен.

# %% [markdown]
# ## 7. Сложность вычислений
#
# Внимание стоит $O(T^2 C)$, проекции — $O(T C^2)$. Посчитаем FLOP счётчиком PyTorch (`FlopCounterMode`) отдельно для проекций и для внимания. Проекции: $2TC \cdot 3C + 2TC \cdot C = 8TC^2$. Оценки и взвешенная сумма: $2T^2C + 2T^2C = 4T^2C$. Масштаб и маска — поэлементные операции, их счётчик не считает.


# %%
def count_flops(T, C, H):
    """FLOP проекций и внимания для одного примера длины T."""
    m, hs = MultiHeadAttention(H, C, C // H, max_seq_len=T, dropout=0.0), C // H
    x = torch.randn(1, T, C)  # (B, T, C)
    with torch.no_grad(), FlopCounterMode(display=False) as qkv_count:
        q, k, v = m.qkv(x).view(1, T, 3, H, hs).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, hs)
    with torch.no_grad(), FlopCounterMode(display=False) as attention_count:
        y = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v  # (B, H, T, hs)
    with torch.no_grad(), FlopCounterMode(display=False) as proj_count:
        m.proj(y.transpose(1, 2).reshape(1, T, C))  # (B, T, C)
    return qkv_count.get_total_flops() + proj_count.get_total_flops(), attention_count.get_total_flops()


# %% [markdown]
# Удвоим $T$, потом $C$, и посмотрим, во сколько раз растёт каждое слагаемое.

# %%
base, longer, wider = count_flops(64, 32, 4), count_flops(128, 32, 4), count_flops(64, 64, 4)
assert base == (8 * 64 * 32**2, 4 * 64**2 * 32)
print(f"T=64, C=32: проекции {base[0]}, внимание {base[1]}")
print(f"T x2: проекции x{longer[0] / base[0]}, внимание x{longer[1] / base[1]}")
print(f"C x2: проекции x{wider[0] / base[0]}, внимание x{wider[1] / base[1]}")

# %% [markdown]
# ## 8. Добавляют ли головы FLOP
#
# При том же $C$ и $\mathrm{hs} = C/H$ головы лишь делят $C$ на части: проекции те же ($C \to 3C$ и $C \to C$), а $H$ матриц оценок $T \times T$ по $\mathrm{hs}$ столбцов — те же $T^2 C$ умножений. Растёт только число весов внимания, $H T^2$, и память они занимают, только если их материализуют: слитное ядро вроде FlashAttention их вообще не хранит (это измерено в главе 3).

# %%
for n_heads in (1, 4, 8):
    proj_flops, attention_flops = count_flops(64, 64, n_heads)
    print(f"H={n_heads}: проекции {proj_flops}, внимание {attention_flops}")
assert count_flops(64, 64, 1) == count_flops(64, 64, 4) == count_flops(64, 64, 8)

# %% [markdown]
# ## 9. Утечка из будущего
#
# Каузальная маска запрещает запросу $t$ смотреть на ключи после $t$. Проверяем поведением: меняем последний токен, и выходы всех прежних позиций не должны сдвинуться.

# %%
x_changed = x.clone()
x_changed[:, -1] = torch.randn(B, C)  # (B, C): новый последний токен
before, after = mha(x), mha(x_changed)
torch.testing.assert_close(after[:, :-1], before[:, :-1])  # позиции 0..T-2 не сдвинулись
unchanged = torch.allclose(after[:, :-1], before[:, :-1])
moved = not torch.allclose(after[:, -1], before[:, -1])
assert moved
print("позиции 0..T-2 те же:", unchanged, "| позиция T-1 изменилась:", moved)

# %% [markdown]
# ## 10. Маска паддинга и каузальная маска
#
# Каузальная маска (T, T) одна на всех: запрос $t$ видит ключи $0, \dots, t$. Маска паддинга (B, T) у каждого примера своя: она закрывает токены-заполнители в конце короткой последовательности. В simple_llm `True` значит «можно смотреть», а каузальная маска накладывается всегда.

# %%
pad = padding_mask([5, 3], max_len=T)  # (B, T)
print("маска паддинга (B, T):", pad.long(), sep="\n")
print("каузальная маска (T, T):", causal.long(), sep="\n")
w_pad = mha.get_attention_weights(x, mask=pad)  # (B, H, T, T)
assert (w_pad[1, :, :, 3:] == 0).all()  # ключи 3 и 4 второго примера — паддинг
print("вес > 0, пример 1, голова 0:", (w_pad[1, 0] > 0).long(), sep="\n")

# %% [markdown]
# Когда паддинг стоит справа, каузальная маска и так закрывает ключи-заполнители от всех настоящих токенов: заполнители стоят после них. Выходы настоящих токенов с маской паддинга и без неё совпадают бит в бит; маска меняет только строки запросов-заполнителей, которые никто не читает. Маска паддинга нужна там, где настоящий токен может увидеть заполнитель: при паддинге **слева**, как при генерации батчем, и в двунаправленном кодировщике, где каузальной маски нет.

# %%
right = torch.equal(mha(x, mask=pad)[1, :3], mha(x)[1, :3])  # настоящие токены 0..2, паддинг на 3, 4
left_pad = torch.tensor([[True] * T, [False, False, True, True, True]])  # (B, T): паддинг на 0, 1
left = torch.equal(mha(x, mask=left_pad)[1, 2:], mha(x)[1, 2:])  # настоящие токены 2..4
print("настоящие токены с маской паддинга и без неё совпали: паддинг справа", right, "| слева", left)
assert right and not left

# %% [markdown]
# ## 11. Что делает dropout в режиме eval
#
# В обучении dropout обнуляет долю $p$ выходов и делит остальные на $1 - p$. После `eval()` это тождественное отображение.

# %%
noisy = MultiHeadAttention(H, C, hs, max_seq_len=8, dropout=0.5)
noisy.load_state_dict(mha.state_dict())
noisy.train()
print("train: два вызова совпали?", torch.equal(noisy(x), noisy(x)))
noisy.eval()
torch.testing.assert_close(noisy(x), mha(x))
print("eval: выход такой же, как без dropout:", torch.allclose(noisy(x), mha(x)))

# %% [markdown]
# ## 12. Post-LN или pre-LN
#
# Post-LN (исходный трансформер, `Decoder` по умолчанию): $x \leftarrow \operatorname{LN}(x + f(x))$. Pre-LN (GPT-2, GPT-3, `norm_first=True`): $x \leftarrow x + f(\operatorname{LN}(x))$. Большинство нынешних моделей — pre-norm с RMSNorm вместо LayerNorm.

# %%
post = Decoder(H, C, hs, max_seq_len=8, dropout=0.0)
pre = Decoder(H, C, hs, max_seq_len=8, dropout=0.0, norm_first=True)
pre.load_state_dict(post.state_dict())
h = post.norm1(x + post.attention(x))  # (B, T, C)
post_by_hand = post.norm2(h + post.feed_forward(h))  # (B, T, C)
torch.testing.assert_close(post_by_hand, post(x))
h = x + pre.attention(pre.norm1(x))  # (B, T, C)
pre_by_hand = h + pre.feed_forward(pre.norm2(h))  # (B, T, C)
torch.testing.assert_close(pre_by_hand, pre(x))
print(
    "LN(x + f(x)) == post-LN Decoder:",
    torch.allclose(post_by_hand, post(x)),
    "| x + f(LN(x)) == pre-LN Decoder:",
    torch.allclose(pre_by_hand, pre(x)),
)
print(
    "наибольшее |среднее по C| на выходе: post-LN",
    round(post(x).mean(-1).abs().max().item(), 3),
    "pre-LN",
    round(pre(x).mean(-1).abs().max().item(), 3),
)

# %% [markdown]
# ## 13. Зачем функция активации в полносвязной сети
#
# Два линейных слоя подряд без нелинейности — это один линейный слой:
#
# $$W_2 (W_1 x + b_1) + b_2 = (W_2 W_1)\,x + (W_2 b_1 + b_2).$$
#
# ReLU между ними это ломает.

# %%
ff = FeedForward(C, dropout=0.0)
W = ff.down.weight @ ff.up.weight  # (C, C)
b = ff.down.weight @ ff.up.bias + ff.down.bias  # (C,)
one_layer = x @ W.T + b  # (B, T, C)
torch.testing.assert_close(ff.down(ff.up(x)), one_layer)
print("без ReLU: два слоя == один слой C×C:", torch.allclose(ff.down(ff.up(x)), one_layer))
print("с ReLU: FeedForward == один слой?", torch.allclose(ff(x), one_layer))

# %% [markdown]
# ## 14. Что хранит KV-кэш
#
# Ключи и значения уже прочитанных токенов, в каждом слое, (B, H_kv, T, hs); запросы не кэшируются. Новый токен приносит только свои запрос, ключ и значение, и его логиты равны логитам полного прохода. За пределами `max_seq_len` окно сдвигается, меняются все позиции, и кэш строится заново: токены остаются теми же, что при пересчёте, и последняя строка проверяет это через `torch.equal`.

# %%
from simple_llm import GPT, RotaryEmbedding

_ = torch.manual_seed(0)
gpt = GPT(20, max_seq_len=8, emb_size=C, num_heads=H, head_size=hs, num_layers=2, dropout=0.0).eval()
ids = torch.randint(0, 20, (B, T))  # (B, T)
cache = gpt.new_cache()
gpt(ids[:, :-1], cache)  # промпт: T − 1 позиций
last = gpt(ids[:, -1:], cache)  # (B, 1, V): одна новая позиция
torch.testing.assert_close(last[:, -1], gpt(ids)[:, -1])
print("ключи в кэше блока 0:", tuple(cache[0].keys.shape))  # (B, H_kv, T, hs)
cached, recomputed = (gpt.generate(ids, 10, do_sample=False, use_cache=c) for c in (True, False))
same = torch.equal(cached, recomputed)
assert same
print("10 токенов за пределом max_seq_len, с кэшем и без одинаковы:", same)

# %% [markdown]
# ## 15. Что такое MQA и GQA
#
# Несколько голов запросов делят одну голову ключей и значений: $H_{kv}$ групп вместо $H$ голов (одна группа — multi-query attention). Голова запросов $h$ читает голову ключей и значений $\lfloor h / (H / H_{kv}) \rfloor$. Кэш уменьшается в $H / H_{kv}$ раз, а запросов остаётся столько же.

# %%
for H_kv in (4, 2, 1):
    model = GPT(20, 8, C, H, hs, 2, dropout=0.0, num_kv_heads=H_kv).eval()
    kv = model.new_cache()
    model(ids, kv)
    heads = [h.kv_index for h in model.decoders[0].attention.heads]
    print(
        f"H_kv = {H_kv}: голова ключей и значений у каждой головы запросов {heads}, кэш",
        sum(c.nbytes() for c in kv) // ids.numel(),
        "байт на токен",
    )

# %% [markdown]
# ## 16. Как RoPE кодирует позиции
#
# Она поворачивает каждую пару $i$ координат запроса и ключа на угол $p\,\theta_i$ в позиции $p$, с собственной частотой у каждой пары: $\theta_i = \mathrm{base}^{-2i/\mathrm{hs}}$ ($\mathrm{base} = 10000$); значения не поворачиваются. Длины не меняются, а оценка запроса в позиции $p$ и ключа в позиции $s$ зависит только от $p - s$.

# %%
rope = RotaryEmbedding(head_size=hs)
q1, k1 = torch.randn(2, 1, hs)  # (T, hs) каждый
scores = [(rope(q1, start=s + 3) @ rope(k1, start=s).T).item() for s in (0, 5, 50)]
print("сдвиг 3, ключ в позициях 0, 5, 50:", [round(v, 6) for v in scores])
assert max(scores) - min(scores) < 1e-12
print("длина при повороте не изменилась:", torch.allclose(rope(q1, start=7).norm(), q1.norm()))
theta = rope.angles(2, dtype=torch.float64)[1]  # (hs/2,): углы в позиции 1 — это частоты
expected = 10000.0 ** (-torch.arange(0, hs, 2) / hs)  # base^(-2i/hs), i = 0 .. hs/2 - 1
torch.testing.assert_close(theta, expected)
print(
    "частота каждой пары:",
    [round(t, 4) for t in theta.tolist()],
    "== base^(-2i/hs):",
    torch.allclose(theta, expected),
)

# %% [markdown]
# ## 17. Softmax без всей строки
#
# Онлайн-softmax читает оценки блоками и хранит текущий максимум $m$ и текущую сумму $d$ величин $e^{x - m}$; когда максимум растёт, $d$ умножают на $e^{m_{\text{старый}} - m_{\text{новый}}}$. После последнего блока $m + \log d$ — это log-sum-exp всей строки. `tiled_attention` делает так для каждого запроса и ведёт заодно текущий выход.

# %%
from simple_llm import tiled_attention

row = torch.randn(1000) * 5
m, d = torch.tensor(float("-inf")), torch.tensor(0.0)
for block in row.split(100):  # десять блоков по 100 оценок
    m_new = torch.maximum(m, block.max())
    d = d * torch.exp(m - m_new) + torch.exp(block - m_new).sum()
    m = m_new
torch.testing.assert_close(m + d.log(), torch.logsumexp(row, dim=0))
print(
    "онлайн, 10 блоков: m + log d == torch.logsumexp(row):",
    torch.allclose(m + d.log(), torch.logsumexp(row, dim=0)),
)
q_, k_, v_ = torch.randn(3, 1, 2, 50, 8).unbind(0)  # (B, H, T, hs) каждый
out_tiled = tiled_attention(q_, k_, v_, is_causal=True, block_size=16)
fused = torch.nn.functional.scaled_dot_product_attention(q_, k_, v_, is_causal=True)  # (B, H, T, hs)
torch.testing.assert_close(out_tiled, fused)
print("tiled_attention, блоки по 16 == scaled_dot_product_attention:", torch.allclose(out_tiled, fused))

# %% [markdown]
# ## 18. Запрос, которому не разрешён ни один ключ
#
# Если все ключи запроса замаскированы, вся его строка оценок — $-\infty$, и softmax делит 0 на 0: получается NaN, который потом расползается по всем следующим слоям. В самописном ядре тот же NaN возникает из $(-\infty) - (-\infty)$, пока текущий максимум ещё равен $-\infty$. simple_llm возвращает для такого запроса нули.

# %%
blocked = torch.full((4,), float("-inf"))  # оценки запроса, которому нельзя смотреть ни на один ключ
print("softmax строки из -inf:", blocked.softmax(dim=-1).tolist())
q9, k4, v4 = torch.randn(9, 8), torch.randn(4, 8), torch.randn(4, 8)  # (T_q, hs), (T_k, hs), (T_k, hs)
out9 = tiled_attention(q9, k4, v4, is_causal=True, block_size=4)  # запросы 0..4 стоят раньше всех ключей
assert not out9.isnan().any() and (out9[:5] == 0).all()
print("tiled_attention, запросы 0..4 без ключей: нули, NaN нет:", bool((out9[:5] == 0).all()))

# %% [markdown]
# Собственные модули PyTorch здесь расходятся. `F.scaled_dot_product_attention` (torch 2.13) возвращает для запроса без разрешённых ключей нули — и с ядром math, и с ядром flash; `nn.MultiheadAttention` возвращает для него NaN. Ниже запросу 2 нельзя смотреть ни на один ключ:

# %%
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

no_key = torch.ones(4, 4, dtype=torch.bool).tril()  # (T, T): True = можно смотреть
no_key[2] = False  # запросу 2 нельзя смотреть ни на один ключ
q4, k4, v4 = torch.randn(3, 1, 1, 4, 8).float().unbind(0)  # (B, H, T, hs) каждый
for backend in (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION):
    with sdpa_kernel(backend):
        row = F.scaled_dot_product_attention(q4, k4, v4, attn_mask=no_key)[0, 0, 2]  # (hs,)
    print(f"scaled_dot_product_attention, {backend.name}: у запроса 2 одни нули:", bool((row == 0).all()))
torch_mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).float().eval()
x4 = torch.randn(1, 4, 8).float()  # (B, T, C)
with torch.no_grad():
    # в nn.MultiheadAttention True = закрыто
    out4 = torch_mha(x4, x4, x4, attn_mask=~no_key, need_weights=False)[0]  # (B, T, C)
    row = out4[0, 2]  # (C,)
print("nn.MultiheadAttention: у запроса 2 одни NaN:", bool(row.isnan().all()))

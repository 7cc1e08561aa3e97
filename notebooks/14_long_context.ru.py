# %% [markdown]
# # Длинный контекст: блокнот
#
# Блокнот главы [«Длинный контекст»](../../chapters/14-long-context/). Нарисуем ленточную маску
# скользящего окна и скользящий кэш со стоками внимания, смещения ALiBi в каждой голове и частоты
# RoPE до и после масштабирования, а затем обучим одну и ту же маленькую модель с каждым способом
# задавать позиции на длине $L$ и измерим её на длинах $L$, $2L$ и $4L$.
#
# Легенда форм: **B** — батч, **T** — длина последовательности, **C** — размер эмбеддинга
# (`emb_size`), **H** — число голов (`num_heads`), **hs** — размер головы (`head_size`), **V** —
# размер словаря; **W** — окно, **S** — число стоков.

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
# ## Ленточная маска и скользящий кэш
#
# С окном $W$ запрос $t$ видит ключи $s$, для которых $t - W < s \le t$: $W$ ключей, включая
# себя. Со стоками внимания ($S$ штук) он видит ещё и первые $S$ позиций. Строка $t$ маски — это то,
# что должен хранить скользящий кэш, когда генерируется токен $t$: `RollingKVCache` держит ровно эти
# позиции, сколько бы токенов ни было сгенерировано.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import simple_llm

# показывать рисунки (Figure) прямо в блокноте
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # float64 и один поток: одинаковые числа на любой машине
torch.set_num_threads(1)
T_demo, W_demo, S_demo = 12, 4, 2
band = simple_llm.sliding_window_mask(T_demo, W_demo)  # (T, T), True — можно смотреть
sinks = simple_llm.sliding_window_mask(T_demo, W_demo, sink_tokens=S_demo)  # (T, T)
cache = simple_llm.RollingKVCache(W_demo, S_demo)
same = []
for t in range(T_demo):  # по одному токену, как при генерации
    held = cache.positions().tolist()  # что лежит в кэше до токена t
    cache.append(torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2))  # (B, H, 1, hs): токен t
    same.append(held + [t] == sinks[t].nonzero().flatten().tolist())
print("ключей на запрос, окно:", band.sum(-1).tolist())
print("ключей на запрос, окно + стоки:", sinks.sum(-1).tolist())
print("на каждом шаге кэш хранит строку t маски:", all(same))
print(
    "кэш после последнего токена:",
    cache.positions().tolist(),
    "| S + W - 1 позиций:",
    len(cache) == S_demo + W_demo - 1,
)

# %% [markdown]
# Две маски рядом: синим отмечены ключи, которые запрос может читать.

# %%
fig, axes = plt.subplots(1, 2, figsize=(5.0, 2.9), layout="constrained")
for ax, mask, title in [
    (axes[0], band, f"окно W = {W_demo}"),
    (axes[1], sinks, f"W = {W_demo}, S = {S_demo}"),
]:
    ax.imshow(mask.numpy(), cmap="Blues", vmin=0, vmax=1.4)
    ax.set(
        title=title,
        xlabel="ключ s",
        ylabel="запрос t",
        xticks=range(0, T_demo, 3),
        yticks=range(0, T_demo, 3),
    )
plt.close(fig)
fig

# %% [markdown]
# ## Смещения ALiBi в каждой голове
#
# ALiBi ничего не прибавляет к токенам: голова $h$ прибавляет $-m_h\,(t - s)$ к оценке запроса $t$
# и ключа $s$. Наклоны образуют геометрическую прогрессию, $m_h = 2^{-8h/H}$ при
# $h = 1, \dots, H$, поэтому одна голова смотрит только на соседей, а другая — почти на всё.

# %%
slopes = simple_llm.alibi_slopes(4)  # (H,)
print("наклоны, H = 2:", simple_llm.alibi_slopes(2).tolist(), "| H = 4:", slopes.tolist())
print("H = 8:", [round(m, 4) for m in simple_llm.alibi_slopes(8).tolist()])
t = torch.arange(T_demo)
bias = -slopes.double()[:, None, None] * (t[:, None] - t[None, :])  # (H, T, T)
bias = bias.masked_fill(t[None, :] > t[:, None], float("nan"))  # (H, T, T): будущее закрыто маской
fig, axes = plt.subplots(2, 2, figsize=(5.2, 5.0), layout="constrained")
for h, ax in enumerate(axes.flat):
    image = ax.imshow(bias[h].numpy(), cmap="viridis", vmin=-3, vmax=0)
    ax.set(title=f"голова {h + 1}: m = 1/{round(1 / slopes[h].item())}", xticks=[], yticks=[])
fig.colorbar(image, ax=axes, shrink=0.7, label="смещение")
plt.close(fig)
fig

# %% [markdown]
# ## Частоты RoPE до и после масштабирования
#
# Пара $i$ головы поворачивается на $\theta_i = \mathrm{base}^{-2i/\mathrm{hs}}$ за позицию, полный
# оборот — за $2\pi/\theta_i$ позиций. За обучающую длину $L$ медленные пары не успевают сделать
# и оборота: за $L$ они попадают в углы, которых модель не видела. Интерполяция позиций (Chen et al.,
# 2023) делит каждую частоту на коэффициент $s$, $\theta_i / s$, так что позиция $sL$ получает
# углы позиции $L$. YaRN (Peng et al., 2023) интерполирует только медленные пары:
#
# $$\theta_i' = (1 - \gamma_i)\,\theta_i + \gamma_i\,\frac{\theta_i}{s}, \qquad \gamma_i = \operatorname{clamp}\!\left(\frac{i - i_\beta}{i_\alpha - i_\beta}, 0, 1\right),$$
#
# где пара $i_\beta$ делает $\beta = 32$ оборота за $L$ позиций, а пара $i_\alpha$ — $\alpha = 1$
# оборот (с округлением вниз и вверх до целой пары); кроме того, YaRN умножает оценки на
# $(0{,}1 \ln s + 1)^2$. На рисунке размер головы Llama, $\mathrm{hs} = 128$, $L = 4096$ и $s = 4$.

# %%
hs_big, L_big, s = 128, 4096, 4.0
kinds = {
    "RoPE": simple_llm.RotaryEmbedding(hs_big),
    "линейное (PI)": simple_llm.RotaryEmbedding(hs_big, scaling={"rope_type": "linear", "factor": s}),
    "YaRN": simple_llm.RotaryEmbedding(
        hs_big, scaling={"rope_type": "yarn", "factor": s, "original_max_position_embeddings": L_big}
    ),
}
wavelengths = {name: 2 * math.pi / rope.inv_freq() for name, rope in kinds.items()}  # (hs/2,) у каждой
turns = L_big / wavelengths["RoPE"]  # (hs/2,): обороты за L позиций
print("пар, не делающих и оборота за L:", int((turns < 1).sum()), "из", hs_big // 2)
yarn_kept = torch.isclose(wavelengths["YaRN"], wavelengths["RoPE"])  # (hs/2,)
yarn_divided = torch.isclose(wavelengths["YaRN"], wavelengths["линейное (PI)"])  # (hs/2,)
print(
    "пары YaRN: без изменений —",
    int(yarn_kept.sum()),
    "| делённые на s —",
    int(yarn_divided.sum()),
    "| на рампе —",
    int((~yarn_kept & ~yarn_divided).sum()),
)
print("множитель оценок YaRN:", round(kinds["YaRN"].attention_factor ** 2, 3))

# %%
fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
for name, style in zip(wavelengths, ["-", "--", ":"]):
    ax.plot(wavelengths[name].numpy(), style, linewidth=2, label=name)
ax.axhline(L_big, color="grey", linewidth=1)
ax.annotate("L = 4096", (1, L_big * 1.4), color="grey")
ax.set(yscale="log", xlabel="пара i", ylabel="позиций на оборот", title=f"hs = {hs_big}, s = {s:g}")
ax.legend()
plt.close(fig)
fig

# %% [markdown]
# ## Задача и модель
#
# Последовательности случайных токенов из словаря $V = 64$, повторяющиеся с периодом $n$: начиная со
# второго периода каждый токен предсказуем, если модель найдёт, где он стоял $n$ шагов назад, и
# скопирует следующий за ним. Обучение: длина $L = 16$, периоды от 2 до $L/2$. Две проверки на длинах
# $L$, $2L$ и $4L$: **copy** — случайная половина и её копия, период растёт с длиной, и модели надо
# читать на $kL/2$ шагов назад; **period** — период фиксирован и равен $L/2$, дальше читать не нужно,
# но позиции уходят за $L$. Мера — точность argmax на предсказуемых токенах; угадывание даёт $1/64$.

# %%
V, L, C, H, hs = 64, 16, 32, 2, 16
STEPS, BATCH = 300, 32


def periodic(n_seq, T, generator, low=2, high=L // 2):
    x = torch.randint(0, V, (n_seq, T), generator=generator)  # (B, T)
    period = torch.randint(low, high + 1, (n_seq, 1), generator=generator)  # (B, 1)
    return x.gather(1, torch.arange(T) % period)  # (B, T): x[t] = x[t mod period]


def copy_test(k):
    half = torch.randint(0, V, (64, k * L // 2), generator=torch.Generator().manual_seed(k))  # (B, T/2)
    return torch.cat([half, half], dim=1)  # (B, T)


tests = {("copy", k): (copy_test(k), k * L // 2) for k in (1, 2, 4)}  # (B, T), где начинается повтор
for k in (1, 2, 4):
    tests["period", k] = (periodic(64, k * L, torch.Generator().manual_seed(10 + k), L // 2, L // 2), L // 2)
print("обучающая последовательность:", periodic(1, L, torch.Generator().manual_seed(0))[0].tolist())
print("проверка copy, 2L:", tests["copy", 2][0].shape, "| проверка period, 4L:", tests["period", 4][0].shape)

# %% [markdown]
# Модель — `GPT` из книги (2 блока, $C = 32$, $H = 2$, $\mathrm{hs} = 16$) с `max_seq_len` $= 4L$,
# чтобы она принимала длинные проверки. У обучаемых позиций строки таблицы после $L$ не обучаются ни
# разу и остаются со случайными начальными значениями. Обучение: 300 шагов Adam на батчах из 32
# последовательностей, одно и то же зерно и одни и те же данные для всех моделей.


# %%
def build(positions, **options):
    _ = torch.manual_seed(0)
    return simple_llm.GPT(V, 4 * L, C, H, hs, num_layers=2, dropout=0.0, positions=positions, **options)


def train(model):
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(STEPS):
        x = periodic(BATCH, L, generator)  # (B, T)
        loss = F.cross_entropy(model(x)[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))  # (B·(T − 1), V)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def accuracy(model, test):
    x, start = tests[test]  # (B, T)
    with torch.no_grad():
        guess = model(x)[:, start:-1].argmax(-1)  # (B, T − start − 1)
    return round((guess == x[:, start + 1 :]).double().mean().item(), 2)


# %% [markdown]
# ## Обучение с каждым видом позиций
#
# Обучаем пять моделей: с обучаемыми, синусоидальными и вращательными позициями, с ALiBi и совсем без
# позиций (NoPE).

# %%
trained = {name: train(build(name)) for name in ["learned", "sinusoidal", "rope", "alibi", "none"]}
for name, model in trained.items():
    print(f"{name:10} copy на L: {accuracy(model, ('copy', 1))}")

# %% [markdown]
# ## Масштабирование и окна на обученной модели с RoPE
#
# Остальным четырём строкам обучение не нужно: они запускают веса модели с RoPE в другом `GPT`.
# Интерполяция позиций и YaRN получают коэффициент $s = k$ на длине $kL$ (на $L$ это обычный RoPE);
# окно $W = L/2$, со стоками (2 штуки) или без них, применяется при инференсе к модели, обученной с
# полным вниманием, как в StreamingLLM. Сток оценивается так же, как в StreamingLLM: будто запрос
# стоит в позиции $\min(t, S + W - 1)$, и расстояние до стока не превышает размера кэша, какой бы
# длинным ни был текст.


# %%
def with_rope_weights(**options):
    model = build("rope", **options)
    model.load_state_dict(trained["rope"].state_dict())
    return model.eval()


def scaled(rope_type, k):
    scaling = {"rope_type": rope_type, "factor": float(k)}
    if rope_type == "yarn":
        scaling["original_max_position_embeddings"] = L
    return with_rope_weights(rope_scaling=scaling)


runs = {name: dict.fromkeys((1, 2, 4), model) for name, model in trained.items()}
runs["rope + linear"] = {k: scaled("linear", k) for k in (1, 2, 4)}
runs["rope + yarn"] = {k: scaled("yarn", k) for k in (1, 2, 4)}
runs["window"] = dict.fromkeys((1, 2, 4), with_rope_weights(window=L // 2))
runs["window + sinks"] = dict.fromkeys((1, 2, 4), with_rope_weights(window=L // 2, sink_tokens=2))
print("модели:", list(runs))

# %% [markdown]
# ## Измерение
#
# Точность на предсказуемых токенах для каждой проверки и длины.

# %%
table = {
    name: {(test, k): accuracy(by_k[k], (test, k)) for test in ("copy", "period") for k in (1, 2, 4)}
    for name, by_k in runs.items()
}
print(f"{'позиции':15} {'copy L':>6} {'2L':>5} {'4L':>5} | {'period L':>8} {'2L':>5} {'4L':>5}")
for name, row in table.items():
    copy, period = [row["copy", k] for k in (1, 2, 4)], [row["period", k] for k in (1, 2, 4)]
    print(
        f"{name:15} {copy[0]:6.2f} {copy[1]:5.2f} {copy[2]:5.2f} | {period[0]:8.2f} {period[1]:5.2f} {period[2]:5.2f}"
    )

# %% [markdown]
# Те же числа линиями: каждая модель на $L$, $2L$ и $4L$.

# %%
fig, axes = plt.subplots(2, 1, figsize=(5.2, 7.2), layout="constrained", sharex=True)
styles = ["-", "--", ":", "-."]
for i, (name, row) in enumerate(table.items()):
    for ax, test in zip(axes, ("copy", "period")):
        ax.plot([1, 2, 4], [row[test, k] for k in (1, 2, 4)], styles[i % 4], marker="os^D"[i % 4], label=name)
for ax, title in zip(axes, ("copy: читать на kL/2 назад", "period L/2: позиции после L")):
    ax.set(title=title, ylabel="точность", ylim=(-0.03, 1.03), xticks=[1, 2, 4])
    ax.axhline(1 / V, color="grey", linewidth=0.8)
axes[1].set(xticklabels=["L", "2L", "4L"], xlabel="длина проверки")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
plt.close(fig)
fig

# %% [markdown]
# ## Почему стоки здесь ничего не меняют
#
# Сток помогает модели, которая отдаёт первому токену большую долю внимания. Сколько отдаёт наша
# модель с RoPE? Вес токена 0 у запросов, которых окно $L/2$ от него отрезает, в среднем по проверке
# period на длине $L$, для каждого слоя и головы — против равной доли на ключи $0, \dots, t$.

# %%
rope_model = trained["rope"]
inputs = []  # что получает внимание каждого блока
hooks = [
    b.attention.register_forward_pre_hook(lambda m, args: inputs.append(args[0])) for b in rope_model.decoders
]
with torch.no_grad():
    rope_model(tests["period", 1][0])  # (B, T, V)
    weights = [
        b.attention.get_attention_weights(h) for b, h in zip(rope_model.decoders, inputs)
    ]  # (B, H, T, T) у каждого
for hook in hooks:
    hook.remove()
late = torch.arange(L // 2, L)  # запросы, которые окно L/2 отрезает от токена 0
for layer, w in enumerate(weights):
    print(
        f"слой {layer + 1}, вес токена 0 по головам:",
        [round(v, 3) for v in w[:, :, late, 0].mean(dim=(0, 2)).tolist()],
    )
print("равная доля:", round((1 / (late + 1.0)).mean().item(), 3))

# %% [markdown]
# # Генерация и KV-кэш: блокнот
#
# Блокнот главы [«Генерация и KV-кэш»](../../chapters/10-generation/). Обучим маленький GPT на
# одной строке текста, сгенерируем из него текст жадно и сэмплированием, затем пройдём KV-кэш шаг
# за шагом и проверим, что декодирование с кэшем даёт ровно те же токены, что и пересчёт.
#
# Легенда форм: **B** — батч, **T** — длина последовательности, **C** — размер эмбеддинга
# (`emb_size`), **H** — число голов, **H_kv** — число голов ключей и значений, **hs** — размер
# головы, **V** — размер словаря.

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
# ## Маленький GPT
#
# У `GPT(vocab_size, max_seq_len, emb_size, num_heads, head_size, num_layers)` сигнатура исходного
# проекта: эмбеддинг токенов, позиции, стек блоков декодера с pre-LN, финальный LayerNorm и
# линейная голова. Словарь здесь — символы одной строки текста.

# %%
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import simple_llm

# показывать рисунки (Figure) прямо в блокноте
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # модель маленькая: float64 дёшев, выводы везде одни
torch.set_num_threads(1)  # маленькой модели хватает одного потока
text = "съешь же ещё этих мягких французских булок, да выпей чаю. " * 4
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}


def encode(s):
    return torch.tensor([[stoi[c] for c in s]])  # (1, T)


def decode(ids):
    return "".join(chars[i] for i in ids.tolist())


_ = torch.manual_seed(0)
model = simple_llm.GPT(
    len(chars), max_seq_len=32, emb_size=32, num_heads=4, head_size=8, num_layers=2, dropout=0.0
)
print("V =", len(chars), "| параметров:", sum(p.numel() for p in model.parameters()))
print(tuple(model(encode("съешь же ")).shape))  # (B, T, V)

# %% [markdown]
# ## Обучение на одной строке
#
# Предсказание следующего символа на случайных окнах по 32 символа: 200 шагов Adam, батч 32.

# %%
data = encode(text)[0]  # (N,)
gen = torch.Generator().manual_seed(0)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for step in range(201):
    starts = torch.randint(0, len(data) - 33, (32,), generator=gen)
    batch = torch.stack([data[s : s + 33] for s in starts.tolist()])  # (B, T + 1)
    logits = model(batch[:, :-1])  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, len(chars)), batch[:, 1:].reshape(-1))
    if step % 100 == 0:
        print(f"шаг {step:3}: потери {loss.item():.3f}")
    if step < 200:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
model.eval()

# %% [markdown]
# ## Жадное декодирование и сэмплирование
#
# `generate(x, max_new_tokens, do_sample)` дописывает по одному токену. Жадное декодирование
# берёт самый вероятный токен. Сэмплирование выбирает токен $i$ с вероятностью
#
# $$
# p_i = \frac{\exp(z_i / \tau)}{\sum_j \exp(z_j / \tau)},
# $$
#
# где $z$ — логиты последней позиции, а $\tau$ — `temperature`; при желании только среди `top_k`
# самых вероятных токенов или внутри ядра `top_p` (ниже).

# %%
prompt = encode("съешь же ")  # (1, 9)
print("жадно:                ", repr(decode(model.generate(prompt, 40, do_sample=False)[0])))
samplers = [
    ("τ = 1.0", {}),
    ("τ = 2.0", {"temperature": 2.0}),
    ("τ = 2.0, top_k = 3", {"temperature": 2.0, "top_k": 3}),
    ("τ = 2.0, top_p = 0.9", {"temperature": 2.0, "top_p": 0.9}),
]
for name, kwargs in samplers:
    _ = torch.manual_seed(1)
    out = model.generate(prompt, 40, do_sample=True, **kwargs)  # (1, 49)
    print(f"{name + ':':22}", repr(decode(out[0])))

# %% [markdown]
# ## Температура, top-k и top-p на одном распределении
#
# После одной буквы «е» строка может продолжиться по-разному, поэтому распределение следующего
# токена размазано по нескольким токенам. Деление логитов на $\tau < 1$ заостряет его, на
# $\tau > 1$ — сглаживает. `top_k = 3` оставляет три самых вероятных токена, какими бы ни были их
# вероятности; `top_p = 0.9` оставляет ядро: отсортируем вероятности
# $p_{(1)} \ge p_{(2)} \ge \dots$ и возьмём наименьшее $n$, при котором
#
# $$
# \sum_{j=1}^{n} p_{(j)} \ge \mathrm{top\_p},
# $$
#
# поэтому размер ядра зависит от температуры.

# %%
probe = encode("е")  # (1, 1)
with torch.no_grad():
    z = model(probe)[0, -1]  # (V,): логиты следующего токена
taus = (0.5, 1.0, 2.0)
probs = torch.stack([(z / tau).softmax(dim=-1) for tau in taus])  # (3, V)
ranked = probs.sort(dim=-1, descending=True).values  # (3, V)
nuclei = ((ranked.cumsum(dim=-1) - ranked) < 0.9).sum(dim=-1).tolist()  # до токена, где сумма дошла до 0.9
shown = max(nuclei) + 2
order = z.argsort(descending=True)[:shown]  # самые вероятные токены, на два больше наибольшего ядра
labels = [repr(chars[i])[1:-1].replace(" ", "␣") for i in order.tolist()]
fig, axes = plt.subplots(3, 1, figsize=(4.8, 6.4), sharex=True, sharey=True, layout="constrained")
fig.suptitle("Вероятности токена после «е» при трёх температурах")
for ax, tau, row, nucleus in zip(axes, taus, probs, nuclei):
    top = row[order]  # (shown,)
    print(
        f"τ = {tau}:",
        "4 наибольшие вероятности",
        [round(v, 2) for v in top[:4].tolist()],
        "| ядро top_p = 0.9:",
        nucleus,
    )
    ax.bar(range(shown), top.numpy(), color=["C0" if r < nucleus else "lightgrey" for r in range(shown)])
    ax.axvline(2.5, color="C3", linestyle="--", label="top_k = 3")
    ax.axvline(nucleus - 0.5, color="C2", linestyle=":", linewidth=2, label="top_p = 0.9")
    ax.set_title(f"τ = {tau}: размер ядра top_p — {nucleus}", fontsize=11)
    ax.set_ylabel("вероятность")
axes[0].legend(fontsize=10)
axes[-1].set_xticks(range(shown), labels)
axes[-1].set_xlabel("токен, самый вероятный первым")
plt.close(fig)
fig

# %% [markdown]
# Ядро — это то, что определили Holtzman et al. (2019) и что оставляет `TopPLogitsWarper` из
# Hugging Face: токен, на котором сумма переходит `top_p`, остаётся. На вероятностях 0,5; 0,3; 0,2
# при `top_p = 0.6` это токены 0 и 1. Исходный проект оставлял токены, накопленная вероятность
# которых не больше `top_p`, то есть останавливался до токена-перехода: только токен 0, жадное
# декодирование под другим именем. `pick_next_token` сэмплирует из ядра:

# %%
probs = torch.tensor([[0.5, 0.3, 0.2]])  # (B, V)
_ = torch.manual_seed(0)
drawn = {simple_llm.pick_next_token(probs.log(), do_sample=True, top_p=0.6).item() for _ in range(200)}
original_rule = (probs.cumsum(dim=-1) <= 0.6).nonzero()[:, 1].tolist()  # накопленная вероятность <= top_p
print(
    "токены, выпавшие при top_p = 0.6:",
    sorted(drawn),
    "| правило исходного проекта оставляет:",
    original_rule,
)
assert drawn == {0, 1} and original_rule == [0]

# %% [markdown]
# Логиты во float16 и bfloat16 сэмплируются во float32: при маленькой температуре они вышли бы за
# наибольшее число float16, 65504, а softmax бесконечностей — не распределение.

# %%
z16 = torch.tensor([[10.0, 9.0, 1.0]], dtype=torch.float16)  # (B, V)
print("логиты float16 / 1e-4:", (z16 / 1e-4).tolist())
token = simple_llm.pick_next_token(z16, do_sample=True, temperature=1e-4)  # (B, 1)
print("токен при температуре 1e-4 из логитов float16:", token.item())
assert token.item() == 0

# %% [markdown]
# ## Кэш шаг за шагом
#
# Каждый слой внимания держит свой `KVCache`: ключи и значения уже прочитанных токенов,
# (B, H_kv, T, hs). Промпт заполняет его; каждый новый токен добавляет одну позицию, и ему нужен
# только собственный запрос. Его логиты должны совпасть с логитами полного прохода по всей
# последовательности.

# %%
cache = model.new_cache()  # по KVCache на блок
logits = model(prompt, cache)  # (B, T, V)
print(len(cache), "кэша; ключи блока 0 после промпта:", tuple(cache[0].keys.shape))  # (B, H_kv, T, hs)
next_id = logits[:, -1:].argmax(-1)  # (B, 1)
step_logits = model(next_id, cache)  # (B, 1, V): одна новая позиция
print("после одного токена:", tuple(cache[0].keys.shape))  # (B, H_kv, T + 1, hs)
full = model(torch.cat([prompt, next_id], dim=1))  # (B, T + 1, V): всё пересчитано
torch.testing.assert_close(step_logits[:, -1], full[:, -1], rtol=1e-10, atol=1e-10)
print(
    "логиты с кэшем == логиты полного прохода (до 1e-10):",
    (step_logits[:, -1] - full[:, -1]).abs().max().item() < 1e-10,
)

# %% [markdown]
# ## Ловушка `is_causal`
#
# Новый токен — это один запрос против $T$ ключей из кэша. `scaled_dot_product_attention(is_causal=True)`
# выравнивает свою маску по левому верхнему углу (pytorch#108108): единственный запрос увидел бы
# только ключ 0. Нужна маска, выровненная по правому нижнему углу; её строит
# `causal_after(T_new, T_cached)`.

# %%
q, k, v = torch.randn(1, 1, 1, 4), torch.randn(1, 1, 5, 4), torch.randn(1, 1, 5, 4)  # T_q = 1, T_k = 5
wrong = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, 1, hs)
print("is_causal=True возвращает одно значение 0:", torch.allclose(wrong, v[:, :, :1]))
print(simple_llm.causal_after(2, 3).int())  # (T_new, T_cached + T_new)

# %% [markdown]
# ## Декодирование с кэшем совпадает с пересчётом
#
# 60 новых токенов после промпта из 9 выходят за `max_seq_len = 32`. С этого момента модель
# читает последние 32 токена, каждый оставшийся токен сдвигается на позицию влево, и кэш
# строится заново по окну. С кэшем и без него токены одни и те же.

# %%
with_cache = model.generate(prompt, 60, do_sample=False)  # (1, 69)
without = model.generate(prompt, 60, do_sample=False, use_cache=False)  # (1, 69)
assert torch.equal(with_cache, without)
print("те же 60 токенов с кэшем и без:", torch.equal(with_cache, without))
print(repr(decode(with_cache[0])))

# %% [markdown]
# ## Сколько работы экономит кэш
#
# Посчитаем позиции, которые проходят через модель: хук записывает длину каждого вызова, по вызову
# на новый токен. Внутри окна пересчёт читает 9, 10, 11, … позиций, кэш — 9, 1, 1, …. Когда текст
# становится длиннее `max_seq_len = 32`, кэш на каждом шаге строится заново по окну, и оба читают
# по 32. Шаг с кэшем всё равно смотрит на все закэшированные ключи: через проекции и
# полносвязные сети проходит одна позиция, но во внимании работа растёт как $O(T)$.

# %%
lengths, calls = {}, []
hook = model.register_forward_pre_hook(lambda module, args: calls.append(args[0].size(1)))
for use_cache in (True, False):
    calls.clear()
    model.generate(prompt, 60, do_sample=False, use_cache=use_cache)
    lengths[use_cache] = list(calls)
    print(
        "с кэшем" if use_cache else "без кэша",
        "| прочитано позиций, 20 новых токенов:",
        sum(calls[:20]),
        "| 60 новых токенов:",
        sum(calls),
        "| вызовы:",
        calls[:4],
        "...",
        calls[-2:],
    )
hook.remove()
fig, ax = plt.subplots(figsize=(4.8, 3.2), layout="constrained")
steps = range(1, 61)
ax.step(steps, lengths[False], where="mid", label="без кэша")
ax.step(steps, lengths[True], where="mid", label="с кэшем")
ax.axvline(24, color="grey", linestyle=":", linewidth=1)
ax.text(25, 16, "окно заполнено", fontsize=10, color="grey")
ax.set(xlabel="новый токен", ylabel="прочитано позиций", title="Позиции через модель на каждый новый токен")
ax.legend(loc="lower right", fontsize=10)
plt.close(fig)
fig

# %% [markdown]
# И по времени, на модели побольше и с длинным окном (точные числа — на странице
# [замеров](../../benchmark/)): печатаем только, быстрее ли кэш.

# %%
_ = torch.manual_seed(0)
big = simple_llm.GPT(
    64, max_seq_len=256, emb_size=128, num_heads=4, head_size=32, num_layers=2, dropout=0.0
).eval()
start_ids = torch.randint(0, 64, (1, 8))  # (B, T)
seconds = {}
for use_cache in (True, False, True, False):
    start = time.perf_counter()
    big.generate(start_ids, 200, do_sample=False, use_cache=use_cache)
    seconds[use_cache] = min(seconds.get(use_cache, float("inf")), time.perf_counter() - start)
print("кэш быстрее на 200 новых токенах:", seconds[True] < seconds[False])

# %% [markdown]
# ## Память
#
# Кэш хранит ключи и значения каждого слоя и каждой головы ключей и значений:
#
# $$
# \text{байт на токен} = 2 \cdot L \cdot H_{kv} \cdot \mathrm{hs} \cdot b,
# $$
#
# где $b$ — размер одного числа в байтах: 8 во float64, 2 во float16.

# %%
cache = model.new_cache()
model(encode(text[:32]), cache)
L, H_kv, hs = len(cache), cache[0].keys.size(1), cache[0].keys.size(3)
measured = sum(c.nbytes() for c in cache) // 32
print(f"2 · {L} · {H_kv} · {hs} · 8 =", 2 * L * H_kv * hs * 8, "байт на токен; измерено:", measured)
assert measured == 2 * L * H_kv * hs * 8

# %% [markdown]
# Та же формула для модели формата 7B: у Llama 2 7B $L = 32$ слоя по $H = 32$ головы размера
# $\mathrm{hs} = 128$, у каждой головы свои ключи и значения ($H_{kv} = H$), и 6,74 миллиарда
# параметров.

# %%
L7, H_kv7, hs7 = 32, 32, 128  # Llama 2 7B: слои, головы ключей и значений, размер головы
per_token = 2 * L7 * H_kv7 * hs7 * 2  # float16: 2 байта на число
weights_gib = 6.74e9 * 2 / 2**30
print(f"(L, H_kv, hs) = {(L7, H_kv7, hs7)}: {per_token} байт на токен = {per_token / 2**20} МиБ во float16")
print(f"4096 токенов: {per_token * 4096 / 2**30} ГиБ на последовательность; веса: {weights_gib:.1f} ГиБ")
print(f"батч из 8 таких последовательностей: {8 * per_token * 4096 / 2**30} ГиБ кэша")
assert 8 * per_token * 4096 / 2**30 > weights_gib

# %% [markdown]
# ## Итог
#
# Кэш хранит то, что не меняется (ключи и значения уже прочитанных токенов), поэтому каждый новый
# токен проходит через модель одной позицией, а не всем окном (его внимание всё равно читает все
# ключи из кэша), и токены те же, что при пересчёте. На токен кэш занимает
# $2 \cdot L \cdot H_{kv} \cdot \mathrm{hs}$ чисел; следующая глава уменьшает множитель $H_{kv}$:
# [multi-query и grouped-query attention](../../chapters/11-gqa/).

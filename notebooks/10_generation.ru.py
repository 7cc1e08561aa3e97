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
# проекта: эмбеддинг токенов, позиции, стопка блоков декодера с pre-LN, финальный LayerNorm и
# линейная голова. Словарь здесь — символы одной строки текста.

# %%
import time

import torch
import torch.nn.functional as F

import simple_llm

torch.set_default_dtype(
    torch.float64
)  # модель маленькая: float64 дёшев, и выводы повторяются на любой машине
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
        print(f"шаг {step:3}: loss {loss.item():.3f}")
    if step < 200:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
model.eval()

# %% [markdown]
# ## Жадное декодирование и сэмплирование
#
# `generate(x, max_new_tokens, do_sample)` дописывает по одному токену. Жадное декодирование
# берёт самый вероятный токен; сэмплирование тянет токен из softmax логитов, делённых на
# температуру, — при желании только среди `top_k` самых вероятных или в пределах массы
# вероятности `top_p`.

# %%
prompt = encode("съешь же ")  # (1, 9)
print("жадно:                ", repr(decode(model.generate(prompt, 40, do_sample=False)[0])))
samplers = [
    ("T = 1.0", {}),
    ("T = 2.0", {"temperature": 2.0}),
    ("T = 2.0, top_k = 3", {"temperature": 2.0, "top_k": 3}),
    ("T = 2.0, top_p = 0.9", {"temperature": 2.0, "top_p": 0.9}),
]
for name, kwargs in samplers:
    _ = torch.manual_seed(1)
    out = model.generate(prompt, 40, do_sample=True, **kwargs)  # (1, 49)
    print(f"{name + ':':22}", repr(decode(out[0])))

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
print("логиты с кэшем == логиты полного прохода:", True)

# %% [markdown]
# ## Ловушка `is_causal`
#
# Новый токен — это один запрос против T ключей из кэша. `scaled_dot_product_attention(is_causal=True)`
# выравнивает свою маску по левому верхнему углу (pytorch#108108): единственный запрос увидел бы
# только ключ 0. Нужна маска, выровненная по правому нижнему углу; её строит
# `causal_after(T_new, T_cached)`.

# %%
q, k, v = torch.randn(1, 1, 1, 4), torch.randn(1, 1, 5, 4), torch.randn(1, 1, 5, 4)  # T_q = 1, T_k = 5
wrong = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, 1, hs)
print("is_causal=True возвращает одно значение 0:", torch.allclose(wrong, v[:, :, :1]))
print(simple_llm.causal_after(2, 3).int())  # (T_new, T_cached + T_new)

# %% [markdown]
# ## Декодирование с кэшем равно пересчёту
#
# 60 новых токенов после промпта из 9 выходят за `max_seq_len = 32`. С этого момента модель
# читает последние 32 токена, каждый оставшийся токен сдвигается на позицию влево, и кэш
# строится заново по окну. С кэшем и без него токены одни и те же.

# %%
with_cache = model.generate(prompt, 60, do_sample=False)  # (1, 69)
without = model.generate(prompt, 60, do_sample=False, use_cache=False)  # (1, 69)
assert torch.equal(with_cache, without)
print("те же 60 токенов с кэшем и без:", True)
print(repr(decode(with_cache[0])))

# %% [markdown]
# ## Сколько работы экономит кэш
#
# Посчитаем позиции, которые проходят через модель: хук записывает длину каждого вызова. Внутри
# окна пересчёт читает 9, 10, 11, … позиций, кэш — 9, 1, 1, ….

# %%
lengths = []
hook = model.register_forward_pre_hook(lambda module, args: lengths.append(args[0].size(1)))
for use_cache in (True, False):
    lengths.clear()
    model.generate(prompt, 20, do_sample=False, use_cache=use_cache)
    print(
        "с кэшем" if use_cache else "без кэша",
        "| прочитано позиций:",
        sum(lengths),
        "| вызовы:",
        lengths[:5],
        "...",
    )
hook.remove()

# %% [markdown]
# И по времени, на модели побольше и с длинным окном (точные числа — в
# [замерах](../../benchmark/)): печатаем только, быстрее ли кэш.

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
# Кэш хранит ключи и значения каждого слоя и каждой головы ключей и значений: 2 · L · H_kv · hs
# чисел на токен, умноженные на размер одного числа в байтах (8 во float64, 2 во float16).

# %%
cache = model.new_cache()
model(encode(text[:32]), cache)
L, H_kv, hs = len(cache), cache[0].keys.size(1), cache[0].keys.size(3)
measured = sum(c.nbytes() for c in cache) // 32
print(f"2 · {L} · {H_kv} · {hs} · 8 =", 2 * L * H_kv * hs * 8, "байт на токен; измерено:", measured)
assert measured == 2 * L * H_kv * hs * 8

# %% [markdown]
# ## Итог
#
# Кэш хранит то, что не меняется (ключи и значения уже прочитанных токенов), поэтому каждый новый
# токен стоит одной позиции, а не всего окна, и токены те же, что при пересчёте. Его память растёт
# как слои × головы ключей и значений × размер головы; следующая глава уменьшает средний множитель:
# [multi-query и grouped-query attention](../../chapters/11-gqa/).

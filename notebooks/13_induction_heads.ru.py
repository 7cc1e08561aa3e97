# %% [markdown]
# # Индукционные головы: блокнот
#
# Блокнот к главе [«Индукционные головы»](../../chapters/13-induction-heads/). Обучим
# двухслойный трансформер из одного только внимания на случайных последовательностях, которые
# повторяют сами себя, увидим, как потери на повторе резко падают, и проверим числом, какие
# головы это сделали: голова предыдущего токена в первом слое и индукционная голова во втором.
# Для сравнения так же обучим однослойную модель.
#
# Обозначения форм: **B** — батч, **T** — длина последовательности, **C** — размер эмбеддинга
# (`emb_size`), **H** — число голов (`num_heads`), **hs** — размер головы (`head_size`),
# **V** — размер словаря.

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
# ## Данные: случайный отрезок и его повтор
#
# Токены выбираются равновероятно из словаря $V = 64$. Тестовая последовательность — $L = 10$
# случайных токенов, а за ними те же 10 токенов ещё раз ($T = 20$). В первой половине следующий
# токен не угадать: лучшие возможные потери — $\log V \approx 4{,}16$. Во второй половине угадать
# можно, если найти более раннюю копию.
#
# Обучающая последовательность — 20 случайных токенов, в которых отрезок из 4–10 токенов (длина
# своя у каждой последовательности) записан дважды подряд, начиная со случайного места. Копия
# всякий раз на другом расстоянии и на других позициях, так что правило «смотри на 9 токенов
# назад» задачу не решает: раннюю копию модели приходится искать по содержимому.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import simple_llm

# показывать рисунки (Figure) прямо в блокноте
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # float64 и один поток: одни и те же числа на любой машине
torch.set_num_threads(1)
V, L, C, H, hs = 64, 10, 32, 2, 16
T = 2 * L


def repeated(n, generator):
    half = torch.randint(0, V, (n, L), generator=generator)  # (B, L)
    return torch.cat([half, half], dim=1)  # (B, T): вторая половина повторяет первую


def training_batch(n, generator):
    x = torch.randint(0, V, (n, T), generator=generator)  # (B, T)
    seg = torch.randint(4, L + 1, (n, 1), generator=generator)  # (B, 1): длина отрезка
    start = (torch.rand(n, 1, generator=generator) * (T - 2 * seg + 1)).long()  # (B, 1): где он начинается
    t = torch.arange(T)  # (T,)
    copy = x.gather(1, (t - seg).clamp(min=0))  # (B, T): токен на seg шагов назад
    second = (t >= start + seg) & (t < start + 2 * seg)  # (B, T): где отрезок записан второй раз
    return torch.where(second, copy, x)  # (B, T)


x_test = repeated(256, torch.Generator().manual_seed(1))  # (B, T)
print("тестовая:    ", x_test[0].tolist())
print("обучающая:  ", training_batch(1, torch.Generator().manual_seed(2))[0].tolist())
print("log V =", round(math.log(V), 2))

# %% [markdown]
# ## Модель: только внимание
#
# Эмбеддинг токена плюс обучаемый эмбеддинг позиции, затем `n_layers` слоёв
# `MultiHeadAttention` (по $H = 2$ головы) с остаточными связями и линейный слой в V логитов. Ни
# полносвязной сети, ни нормализации: всё, что позиция узнаёт о других, приходит
# через внимание. `forward` возвращает ещё и веса каждого слоя, а `off=(слой, голова)` выключает
# одну голову маской формы `(B, H, T, T)`.


# %%
class AttentionOnly(nn.Module):
    def __init__(self, n_layers):
        super().__init__()
        self.tok = nn.Embedding(V, C)  # токен -> (C,)
        self.pos = nn.Embedding(T, C)  # позиция -> (C,)
        self.layers = nn.ModuleList(
            simple_llm.MultiHeadAttention(num_heads=H, emb_size=C, head_size=hs, max_seq_len=T, dropout=0.0)
            for _ in range(n_layers)
        )
        self.out = nn.Linear(C, V)

    def forward(self, x, off=None):
        h = self.tok(x) + self.pos(torch.arange(x.size(1)))  # (B, T, C)
        weights = []
        for number, layer in enumerate(self.layers):
            mask = None
            if off is not None and off[0] == number:
                mask = torch.ones(x.size(0), H, x.size(1), x.size(1), dtype=torch.bool)  # (B, H, T, T)
                mask[:, off[1]] = False  # эта голова не видит ни одного ключа: её выход — нули
            y, w = layer(h, mask=mask, return_weights=True)  # (B, T, C), (B, H, T, T)
            h = h + y  # остаточная связь
            weights.append(w)
        return self.out(h), weights  # (B, T, V), n_layers x (B, H, T, T)


_ = torch.manual_seed(0)
model = AttentionOnly(n_layers=2)
logits, weights = model(x_test[:1])
print("параметров:", sum(p.numel() for p in model.parameters()))
print(tuple(logits.shape), [tuple(w.shape) for w in weights])  # (B, T, V), (B, H, T, T) на слой

# %% [markdown]
# ## Три числа
#
# - **Потери по половинам.** Позиция $t$ предсказывает токен $t + 1$. «Первая половина» — потери на
#   токенах с 1-го по 9-й, «повтор» — на токенах с 11-го по 19-й (токен 10, с которого начинается
#   повтор, предвидеть нельзя, его не считаем).
# - **Оценка совпадения префикса** (prefix matching) для головы: во второй половине у запроса $t$
#   токен $x_t$, его ранняя копия стоит на позиции $t - L$; оценка — вес на ключе сразу после этой
#   копии, $t - L + 1$, в среднем по запросам. Индукционная полоса лежит на $L - 1 = 9$ клеток ниже
#   диагонали.
# - **Оценка предыдущего токена**: вес на ключе $t - 1$ в среднем по $t = 1, \dots, 19$.


# %%
def half_losses(model, x, off=None):
    with torch.no_grad():
        logits, _ = model(x, off)  # (B, T, V)
    loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), x[:, 1:], reduction="none")  # (B, T − 1)
    return loss[:, : L - 1].mean().item(), loss[:, L:].mean().item()  # первая половина, повтор


def head_scores(model, x):
    with torch.no_grad():
        _, weights = model(x)  # n_layers x (B, H, T, T)
    q, p = torch.arange(L, T), torch.arange(1, T)  # запросы повтора; запросы, у которых есть предыдущий токен
    prefix = [w[:, :, q, q - L + 1].mean(dim=(0, 2)) for w in weights]  # n_layers x (H,)
    previous = [w[:, :, p, p - 1].mean(dim=(0, 2)) for w in weights]  # n_layers x (H,)
    return torch.stack(prefix), torch.stack(previous)  # (n_layers, H) each


def rounded(t):
    return [[round(v, 2) for v in row] for row in t.tolist()]


prefix, previous = head_scores(model, x_test)
print("потери (первая половина, повтор):", [round(v, 2) for v in half_losses(model, x_test)])
print("совпадение префикса, слой x голова:", rounded(prefix))
print("предыдущий токен, слой x голова:   ", rounded(previous))

# %% [markdown]
# ## Обучение: фазовый переход
#
# Adam, 800 шагов по 64 свежие обучающие последовательности, потери по всем позициям. Каждые
# 100 шагов измеряем три числа на тестовых последовательностях. Следите за столбцом «повтор»:
# первые 300 шагов потери снижаются так же, как у однослойной модели (модель узнаёт, что
# следующий токен — один из уже встречавшихся), а затем за 200 шагов падают втрое, и на тех же
# шагах резко растут оценки совпадения префикса во втором слое и оценка предыдущего токена у
# одной головы первого слоя.


# %%
def train(model, steps=800, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []  # (шаг, первая половина, повтор, префикс (n_layers, H), предыдущий (n_layers, H))
    for step in range(steps + 1):
        if step % 100 == 0:
            history.append((step, *half_losses(model, x_test), *head_scores(model, x_test)))
        if step == steps:
            break
        x = training_batch(64, generator)  # (B, T)
        logits, _ = model(x)  # (B, T, V)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))  # (B·(T − 1), V)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return history


history = train(model)
print("шаг | потери: первая половина, повтор | совпадение префикса, слой 2 | предыдущий токен, слой 1")
for step, first, repeat, prefix, previous in history:
    print(f"{step:4} | {first:.2f} {repeat:.2f} | {rounded(prefix)[-1]} | {rounded(previous)[0]}")

# %% [markdown]
# Та же история на картинке: потери на каждой половине (пунктир — $\log V$) и оценка совпадения
# префикса у двух голов второго слоя.

# %%
steps = [row[0] for row in history]
# два графика друг под другом: читаются и на телефоне
fig, (left, right) = plt.subplots(2, 1, figsize=(5.6, 5.2), layout="constrained")
left.plot(steps, [row[1] for row in history], label="первая половина")
left.plot(steps, [row[2] for row in history], label="повтор")
left.axhline(math.log(V), color="grey", linestyle="--", linewidth=1)
left.set(xlabel="шаг обучения", ylabel="потери", title="Потери по половинам")
left.legend()
for h in range(H):
    right.plot(steps, [row[3][-1, h].item() for row in history], label=f"слой 2, голова {h}")
right.set(xlabel="шаг обучения", ylabel="оценка", ylim=(0, 1), title="Совпадение префикса")
right.legend()
plt.close(fig)
fig

# %% [markdown]
# ## Фазовый переход в числах
#
# Найдём индукционную голову (голова второго слоя с наибольшей итоговой оценкой совпадения
# префикса) и голову предыдущего токена (голова первого слоя с наибольшей оценкой предыдущего
# токена) и проверим (`assert`) то, что видно в таблице: потери на повторе начинаются около
# $\log V$ и заканчиваются намного ниже; падение резкое (большая часть — за 300 шагов); первая
# половина остаётся около $\log V$; оценка индукционной головы растёт от почти нуля до значения
# больше 0,5, как и у второй головы второго слоя и у головы предыдущего токена; а индукционная
# голова и голова предыдущего токена переходят через 0,5 внутри окна наибольшего падения.

# %%
first = torch.tensor([row[1] for row in history])  # (checkpoints,)
repeat = torch.tensor([row[2] for row in history])  # (checkpoints,)
induction = int(history[-1][3][1].argmax())  # голова второго слоя
prev_head = int(history[-1][4][0].argmax())  # голова первого слоя
score = torch.tensor([row[3][1, induction].item() for row in history])  # (checkpoints,)
fall = repeat[:-3] - repeat[3:]  # (checkpoints − 3,): падение за 300 шагов
print(
    "индукционная голова: слой 2, голова", induction, "| голова предыдущего токена: слой 1, голова", prev_head
)
print("потери на повторе: в начале", round(repeat[0].item(), 2), "в конце", round(repeat[-1].item(), 2))
print(
    "наибольшее падение за 300 шагов:", round(fall.max().item(), 2), "к шагу", steps[int(fall.argmax()) + 3]
)
print("доля от всего падения:", round((fall.max() / (repeat[0] - repeat[-1])).item(), 2))
assert repeat[0] > math.log(V) - 0.5 and repeat[-1] < 1.5
assert fall.max() > 0.6 * (repeat[0] - repeat[-1])  # резкое падение, а не ровный спуск
assert (first - math.log(V)).abs().max() < 0.5  # первая половина остаётся непредсказуемой
assert score[0] < 0.1 and score[-1] > 0.5
previous_score = torch.tensor([row[4][0, prev_head].item() for row in history])  # (checkpoints,)
window = (steps[int(fall.argmax())], steps[int(fall.argmax()) + 3])  # 300 шагов наибольшего падения
passed = {
    name: steps[int((s > 0.5).nonzero()[0])]
    for name, s in (("индукционная", score), ("предыдущего токена", previous_score))
}
print("окно наибольшего падения:", window, "| первая точка выше 0.5:", passed)
print("обе головы второго слоя в конце выше 0.5:", bool((history[-1][3][1] > 0.5).all()))
assert all(window[0] < step <= window[1] for step in passed.values())  # на тех же шагах, что и падение
assert (history[-1][3][1] > 0.5).all() and previous_score[0] < 0.2 and previous_score[-1] > 0.5

# %% [markdown]
# ## Головы на повторяющейся последовательности
#
# Карты внимания обоих слоёв на одной тестовой последовательности. В первом слое голова
# предыдущего токена держит линию сразу под диагональю. Во втором слое индукционная голова
# рисует полосу на $L - 1 = 9$ клеток ниже диагонали, но только во второй половине: запрос $t$
# смотрит на позицию $t - 9$, на токен после ранней копии $x_t$.

# %%
sample = x_test[:1]  # (1, T)
labels = [str(tok) for tok in sample[0].tolist()]
with torch.no_grad():
    _, weights = model(sample)  # 2 x (1, H, T, T)
q, p = torch.arange(L, T), torch.arange(1, T)  # запросы повтора; запросы, у которых есть предыдущий токен
print("слой 1, вес на t − 1 по головам:", [round(v, 2) for v in weights[0][0, :, p, p - 1].mean(-1).tolist()])
print(
    "слой 2, вес на t − 9 по головам:",
    [round(v, 2) for v in weights[1][0, :, q, q - L + 1].mean(-1).tolist()],
)
simple_llm.plot_attention_heads(weights[0], tokens=labels, lang="ru", title="Слой 1")

# %%
simple_llm.plot_attention_heads(weights[1], tokens=labels, lang="ru", title="Слой 2")

# %% [markdown]
# ## Те же головы, интерактивно
#
# Выберите токен во второй половине (щелчком, касанием или клавишами Tab и Enter; стрелки
# двигают выбор по токенам) и посмотрите, куда смотрит каждая голова. Во втором слое
# индукционная голова указывает на токен после ранней копии выбранного; переключитесь на первый
# слой, и голова предыдущего токена укажет на шаг назад. Сначала выбран последний токен.

# %%
simple_llm.attention_view(weights, labels, lang="ru")

# %% [markdown]
# ## Выключим головы
#
# Карты показывают, куда смотрят головы; выключение головы показывает, что нужно модели.
# Выключаем по одной голове (её выход становится нулями) и снова измеряем потери на повторе.
# Здесь индукционными стали обе головы второго слоя, поэтому без одной из них вторая ещё
# помогает; без головы предыдущего токена не работает ни одна.

# %%
ablation = {}
for layer in range(2):
    for h in range(H):
        ablation[layer, h] = half_losses(model, x_test, off=(layer, h))[1]
        print(f"без слоя {layer + 1}, головы {h}: потери на повторе {ablation[layer, h]:.2f}")
print("все головы:", round(repeat[-1].item(), 2))
print(
    "во сколько раз выше потери без головы второго слоя:",
    [round(ablation[1, h] / repeat[-1].item(), 1) for h in range(H)],
)
assert ablation[1, induction] > 2 * repeat[-1]  # без индукционной головы потери по меньшей мере вдвое выше
assert ablation[0, prev_head] > math.log(V) - 0.5  # без головы предыдущего токена они снова около log V

# %% [markdown]
# Те же потери столбиками. Пунктир — $\log V$ (модель ничего не выучила), точки — $\log L$ (лучшее,
# на что способна модель без индукционных голов).

# %%
names = ["ни одна (вся модель)"] + [f"слой {layer + 1}, голова {h}" for layer in range(2) for h in range(H)]
losses = [repeat[-1].item()] + [ablation[layer, h] for layer in range(2) for h in range(H)]
fig, ax = plt.subplots(figsize=(4.8, 3.2), layout="constrained")
ax.barh(names, losses, color=["C2"] + ["C0"] * (len(names) - 1))
ax.axvline(math.log(V), color="grey", linestyle="--", linewidth=1)
ax.axvline(math.log(L), color="grey", linestyle=":", linewidth=1)
ax.text(math.log(L) + 0.05, 0.03, "log L", transform=ax.get_xaxis_transform())
ax.text(math.log(V) - 0.05, 0.03, "log V", ha="right", transform=ax.get_xaxis_transform())
ax.invert_yaxis()
ax.set(xlabel="потери на повторе", title="Какая голова выключена")
plt.close(fig)
fig

# %% [markdown]
# ## Контроль: один слой
#
# Та же модель с одним слоем внимания, обученная точно так же (те же начальные значения генератора,
# те же шаги). Один слой может найти раннюю копию $x_t$, но его ключи знают только свой токен и свою
# позицию: ничто в ключе $t - L + 1$ не говорит «токен передо мной равен $x_t$». Эти сведения даёт
# только голова предыдущего токена в более раннем слое. Один слой может выучить лишь «следующий
# токен — один из уже встречавшихся»: на повторе это один из $L = 10$ токенов, в лучшем случае потери
# около $\log L \approx 2{,}3$, и до двухслойной модели далеко.

# %%
_ = torch.manual_seed(0)
control = AttentionOnly(n_layers=1)
control_history = train(control)
for step, first_c, repeat_c, prefix_c, _ in control_history[::2]:
    print(f"{step:4} | {first_c:.2f} {repeat_c:.2f} | совпадение префикса {rounded(prefix_c)[0]}")
control_repeat = torch.tensor([row[2] for row in control_history])  # (checkpoints,)
control_score = torch.stack([row[3][0] for row in control_history])  # (checkpoints, H)
print(
    "наименьшие потери на повторе: один слой",
    round(control_repeat.min().item(), 2),
    "| два слоя",
    round(repeat.min().item(), 2),
)
print("наибольшее совпадение префикса у одного слоя:", round(control_score.max().item(), 2))
print("log L =", round(math.log(L), 2))
assert control_repeat.min() > math.log(L) and control_score.max() < 0.5

# %% [markdown]
# Обе модели на одном графике: потери на повторе в каждой контрольной точке. Однослойная модель
# снижает их медленно и остаётся выше $\log L$; двухслойная первые 300 шагов идёт рядом с ней, а
# потом резко падает.

# %%
fig, ax = plt.subplots(figsize=(4.8, 3.4), layout="constrained")
ax.plot(steps, repeat, "o-", label="два слоя")
ax.plot(steps, control_repeat, "s-", label="один слой")
ax.axhline(math.log(V), color="grey", linestyle="--", linewidth=1)
ax.axhline(math.log(L), color="grey", linestyle=":", linewidth=1)
ax.text(steps[-1], math.log(V) - 0.1, "log V", ha="right", va="top")
ax.text(steps[-1], math.log(L) - 0.1, "log L", ha="right", va="top")
ax.set(xlabel="шаг обучения", ylabel="потери на повторе", ylim=(0, 5), title="Один слой против двух")
ax.legend(loc="lower left")
plt.close(fig)
fig

# %% [markdown]
# ## Итог
#
# С двумя слоями потери на повторе резко падают от $\log V$ до намного меньших значений, на тех же
# шагах, на которых голова второго слоя начинает совпадать с префиксом; голова первого слоя
# смотрит на предыдущий токен. Выключите любую из них, и потери снова растут; один слой до
# этого не доходит. Схема по шагам — в [главе](../../chapters/13-induction-heads/).

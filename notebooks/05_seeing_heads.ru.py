# %% [markdown]
# # Что видят головы: блокнот
#
# Блокнот к главе [«Что видят головы»](../../chapters/05-seeing-heads/). Сначала нарисуем веса
# внимания всех голов необученного `MultiHeadAttention`, потом обучим крошечную модель на задаче,
# где головам выгодно смотреть в разные места, и числами проверим, чему научилась каждая.
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
# ## Задача: два сдвига
#
# Последовательность — $T = 12$ случайных токенов из словаря размера $V = 8$. На каждой позиции
# $t \ge 3$ модель должна назвать два токена: $x_{t-1}$ и $x_{t-3}$. Что это за токены, не важно,
# важны только позиции: решение — смотреть ровно на 1 и на 3 шага назад. На позициях 0…2 ответа
# нет, и ни в функцию потерь, ни в точность они не входят.

# %%
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import simple_llm

# показывать рисунки (Figure) прямо в блокноте
# %matplotlib inline
torch.set_default_dtype(torch.float64)  # модель крошечная: float64 дёшев и устойчив
torch.set_num_threads(1)  # крошечной модели хватает одного потока
V, T, C, H, hs = 8, 12, 32, 2, 16
OFFSETS = (1, 3)  # выход 0 — токен t − 1, выход 1 — токен t − 3
K = max(OFFSETS)  # первая позиция, где у обоих выходов есть ответ
data = torch.Generator().manual_seed(0)
x_train = torch.randint(0, V, (512, T), generator=data)  # (B, T)
x_test = torch.randint(0, V, (256, T), generator=data)  # (B, T)


def targets(x):
    return torch.stack([x.roll(k, dims=1) for k in OFFSETS], dim=-1)  # (B, T, 2): x[t − k]


print("токены:      ", x_test[0].tolist())
print("ответ t − 1: ", targets(x_test)[0, K:, 0].tolist(), "(с позиции 3)")
print("ответ t − 3: ", targets(x_test)[0, K:, 1].tolist(), "(с позиции 3)")

# %% [markdown]
# ## Модель
#
# Эмбеддинг токена плюс обучаемый эмбеддинг позиции, один слой `MultiHeadAttention` с
# остаточной связью и линейный выходной слой, который выдаёт два распределения по словарю.
# Полносвязной сети нет: всё, что модель знает о других токенах, приходит к ней через внимание.


# %%
class Tiny(nn.Module):
    def __init__(self, num_heads=H, positions=True):
        super().__init__()
        self.tok = nn.Embedding(V, C)  # токен -> (C,)
        self.pos = nn.Embedding(T, C) if positions else None  # позиция -> (C,)
        self.attn = simple_llm.MultiHeadAttention(
            num_heads=num_heads, emb_size=C, head_size=C // num_heads, max_seq_len=T, dropout=0.0
        )
        self.out = nn.Linear(C, len(OFFSETS) * V)

    def embed(self, x):
        if self.pos is None:
            return self.tok(x)  # (B, T, C) без позиций: только токен
        return self.tok(x) + self.pos(torch.arange(x.size(1)))  # (B, T, C)

    def forward(self, x, mask=None):
        h = self.embed(x)  # (B, T, C)
        h = h + self.attn(h, mask=mask)  # (B, T, C): остаточная связь
        return self.out(h).view(x.size(0), x.size(1), len(OFFSETS), V)  # (B, T, 2, V)


_ = torch.manual_seed(0)
model = Tiny()
print("параметров:", sum(p.numel() for p in model.parameters()))
print(tuple(model(x_test).shape))  # (B, T, 2, V)

# %% [markdown]
# ## Две меры: точность и диагонали
#
# Точность — доля верных ответов на позициях $t \ge 3$, отдельно для каждого выхода. Чтобы
# описать голову одним числом, усредним её вес на диагонали $t - k$, то есть сколько внимания
# запрос $t$ отдаёт токену ровно на $k$ шагов назад. Усредняем по всем тестовым
# последовательностям и по тем запросам, у которых есть ответ и есть ключ на $k$ шагов назад:
# $t \ge \max(3, k)$. Для $k = 4$ это $t \ge 4$: у запроса 3 ключа на четыре шага назад нет.


# %%
def accuracy(model, x, mask=None):
    with torch.no_grad():
        pred = model(x, mask=mask).argmax(dim=-1)  # (B, T, 2)
    return (pred[:, K:] == targets(x)[:, K:]).double().mean(dim=(0, 1))  # (2,)


def offset_table(model, x, offsets=range(5)):
    with torch.no_grad():
        w = model.attn.get_attention_weights(model.embed(x))  # (B, H, T, T)
    columns = []
    for k in offsets:
        t = torch.arange(max(K, k), T)  # запросы с ответом, у которых есть ключ t − k
        columns.append(w[:, :, t, t - k].mean(dim=(0, 2)))  # (H,)
    return torch.stack(columns, dim=1)  # (H, 5)


def report(model):
    print("точность (t − 1, t − 3):", [round(a, 2) for a in accuracy(model, x_test).tolist()])
    for h, row in enumerate(offset_table(model, x_test).tolist()):
        print(f"голова {h}, вес на t − 0…t − 4:", [round(p, 2) for p in row])


report(model)
t = torch.arange(K, T)  # запросы с ответом: 3…11
uniform = [(1 / (torch.arange(max(K, k), T) + 1)).mean().item() for k in range(5)]  # вес 1 / (t + 1)
print("при равных весах по t + 1 ключам, t − 0…t − 4:", [round(u, 2) for u in uniform])

# %% [markdown]
# ## Головы до обучения
#
# Необученный слой распределяет внимание по всем разрешённым ключам: запрос $t$ даёт каждому из
# своих $t + 1$ ключей вес, не слишком далёкий от $1/(t+1)$ (в таблице выше — от 0,1 до 0,19, а
# при равных весах было бы 0,13 и 0,14). Ни одна диагональ не выделяется: на картинке яркость
# спадает от левого верхнего угла, где запрос 0 видит только себя, к тусклой нижней строке.

# %%
sample = x_test[:1]  # (1, T): одна тестовая последовательность
labels = [f"{i}:{tok}" for i, tok in enumerate(sample[0].tolist())]  # «позиция:токен»
with torch.no_grad():
    w_before = model.attn.get_attention_weights(model.embed(sample))  # (1, H, T, T)
print(tuple(w_before.shape))  # (B, H, T, T)
print("максимум в строке 11 по головам:", [round(m, 2) for m in w_before[0, :, -1].amax(dim=-1).tolist()])
fig = simple_llm.plot_attention_heads(w_before, tokens=labels, lang="ru", title="До обучения")
fig

# %% [markdown]
# ## Обучение
#
# Полный батч из 512 последовательностей, Adam, 100 шагов; функция потерь — перекрёстная
# энтропия по обоим выходам на позициях $t \ge 3$. Всё детерминировано: данные дают генератор с
# заданным сидом, а модель создана после `torch.manual_seed(0)`.

# %%
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
y_train = targets(x_train)  # (B, T, 2)
for step in range(101):
    logits = model(x_train)  # (B, T, 2, V)
    loss = F.cross_entropy(logits[:, K:].reshape(-1, V), y_train[:, K:].reshape(-1))  # (B·(T−3)·2, V)
    if step % 20 == 0:
        print(f"шаг {step:3}: потери {loss.item():.3f}")
    if step < 100:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

# %% [markdown]
# ## Головы после обучения
#
# Теперь у каждой головы своя диагональ. Голова 0 держит линию $t - 3$: запрос «3:1» смотрит на
# ключ «0:0», запрос «4:4» — на «1:1». Голова 1 держит линию $t - 1$, сразу под главной
# диагональю. Это и есть два ответа задачи. В строках 0…2 ответа нет, и там головы смотрят куда
# придётся.

# %%
with torch.no_grad():
    w_after = model.attn.get_attention_weights(model.embed(sample))  # (1, H, T, T)
print("вес на t − 1 по головам:", [round(p, 2) for p in w_after[0, :, t, t - 1].mean(dim=-1).tolist()])
print("вес на t − 3 по головам:", [round(p, 2) for p in w_after[0, :, t, t - 3].mean(dim=-1).tolist()])
fig = simple_llm.plot_attention_heads(w_after, tokens=labels, lang="ru", title="После обучения")
fig

# %% [markdown]
# ## Проверка числом
#
# Та же таблица, что до обучения. `assert` требуют, чтобы точность была выше 0,95, а за два сдвига
# отвечали **разные** головы, каждая с весом больше 0,8 на своей диагонали.

# %%
report(model)
acc = accuracy(model, x_test)  # (2,)
table = offset_table(model, x_test)  # (H, 5)
owner = [int(table[:, k].argmax()) for k in OFFSETS]  # голова, которая отвечает за сдвиг k
assert (acc > 0.95).all()
assert all(table[h, k] > 0.8 for h, k in zip(owner, OFFSETS))
assert owner[0] != owner[1]
print("сдвиг 1 — голова", owner[0], "| сдвиг 3 — голова", owner[1])

# %% [markdown]
# ## Сверка с ручным расчётом
#
# Карта — не картинка «от пакета», а softmax масштабированных оценок с каузальной маской:
#
# $$w = \operatorname{softmax}\!\left(\frac{QK^\top}{\sqrt{\mathrm{hs}}} + M\right),$$
#
# где в маске $M$ выше диагонали стоит $-\infty$, а в остальных клетках 0. Посчитаем веса сами из
# `model.attn.qkv` и сравним с `get_attention_weights`.

# %%
with torch.no_grad():
    e = model.embed(sample)  # (1, T, C)
    qkv = model.attn.qkv(e).view(1, T, 3, H, hs)  # (B, T, 3, H, hs)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, T, hs) каждый
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
    by_hand = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
torch.testing.assert_close(by_hand, w_after)
print("веса", tuple(by_hand.shape), "совпадают с get_attention_weights:", torch.allclose(by_hand, w_after))

# %% [markdown]
# ## Выключим голову
#
# Последняя проверка — причинная: если голова $h$ отвечает за сдвиг $k$, то без неё этот выход
# должен упасть до угадывания (случайный уровень $1/V$, то есть 0,125), а другой — остаться
# точным. Выключить голову можно маской формы (B, H, T, T) из
# [главы о масках](../../chapters/04-masks/): у головы $h$ закрыты все ключи, все её строки
# полностью закрыты, и она выдаёт нули.

# %%
for h in range(H):
    off = torch.ones(len(x_test), H, T, T, dtype=torch.bool)  # (B, H, T, T)
    off[:, h] = False  # голова h не видит ни одного ключа
    acc_off = accuracy(model, x_test, mask=off)  # (2,)
    print(f"без головы {h}: точность (t − 1, t − 3) =", [round(a, 2) for a in acc_off.tolist()])
    assert acc_off[owner.index(h)] < 0.5  # выход этой головы — на уровне угадывания

# %% [markdown]
# ## Одна голова против двух
#
# Зачем вообще несколько голов? Один softmax даёт каждому запросу **одно** взвешенное среднее
# значений, а задача требует сразу двух токенов: $x_{t-1}$ и $x_{t-3}$. Обучим ту же модель с одной
# головой размера 32 вместо двух голов по 16: $C = 32$ не меняется, число параметров тоже. Данные,
# сид и 100 шагов — те же.


# %%
def train(model, steps=100):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        logits = model(x_train)  # (B, T, 2, V)
        loss = F.cross_entropy(logits[:, K:].reshape(-1, V), y_train[:, K:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


_ = torch.manual_seed(0)
one_head = Tiny(num_heads=1)  # H = 1, hs = 32
print(
    "параметров при H = 1 и H = 2:",
    sum(p.numel() for p in one_head.parameters()),
    sum(p.numel() for p in model.parameters()),
)
print(f"H = 1, потери после обучения: {train(one_head):.3f}")
acc_one = accuracy(one_head, x_test)  # (2,)
print("H = 1, точность (t − 1, t − 3):", [round(a, 2) for a in acc_one.tolist()])
print("H = 1, вес на t − 0…t − 4:", [round(p, 2) for p in offset_table(one_head, x_test)[0].tolist()])
assert acc_one.max() > 0.95 and acc_one.min() < 0.5  # один сдвиг выучен, другой нет

# %% [markdown]
# Единственная голова делит вес между двумя сдвигами (0,42 на $t - 1$, 0,52 на $t - 3$) и
# возвращает их смесь — одно среднее двух векторов значений. По такой смеси линейный выходной слой
# не может понять, какой токен где стоял. Выручает только то, что веса не равны: токен на $t - 3$,
# у которого вес больше, модель угадывает, а токен на $t - 1$ почти нет. Две головы дают два
# взвешенных средних на запрос, по одному на каждый сдвиг.

# %% [markdown]
# ## Без эмбеддинга позиции
#
# Снова две головы, но без `pos`: модель видит только токены. Оценки зависят от содержимого
# запроса и ключа, а не от того, где они стоят. С каузальной маской запрос $t$ видит свой префикс
# $x_0, \dots, x_t$ как **множество**: если перемешать предыдущие токены, его ответ не изменится.

# %%
_ = torch.manual_seed(0)
no_positions = Tiny(positions=False)
print(f"без позиций, потери после обучения: {train(no_positions):.3f}")
acc_blind = accuracy(no_positions, x_test)  # (2,)
print("без позиций, точность (t − 1, t − 3):", [round(a, 2) for a in acc_blind.tolist()])
last = x_test[:1]  # (1, T)
order = torch.randperm(T - 1, generator=torch.Generator().manual_seed(1))  # предыдущие позиции вперемешку
shuffled = torch.cat([last[:, order], last[:, -1:]], dim=1)  # (1, T): последний токен на месте
with torch.no_grad():
    same = [torch.allclose(m(last)[:, -1], m(shuffled)[:, -1]) for m in (no_positions, model)]
print("последний ответ не меняется от перемешивания префикса (без позиций / с позициями):", same)
assert same == [True, False]

# %% [markdown]
# Значит, в лучшем случае модель угадывает по множеству предыдущих токенов. Лучшая такая догадка —
# токен, который чаще всех встречается среди $x_0, \dots, x_{t-1}$. Она верна примерно в трети
# случаев, заметно чаще случайного уровня $1/V$, и как раз на этом уровне оказывается модель без
# позиций.

# %%
hits = []
for q in range(K, T):
    counts = F.one_hot(x_test[:, :q], V).sum(dim=1)  # (B, V): сколько раз каждый токен встретился до q
    guess = counts.argmax(dim=-1)  # (B,)
    hits.append([(guess == x_test[:, q - k]).double().mean() for k in OFFSETS])
order_blind = torch.tensor(hits).mean(dim=0)  # (2,)
print("самый частый предыдущий токен, точность (t − 1, t − 3):", [round(a, 2) for a in order_blind.tolist()])
print("случайный уровень 1 / V:", round(1 / V, 3))
assert (acc_blind < order_blind + 0.05).all()  # не лучше догадки, слепой к порядку

# %% [markdown]
# ## Внимание без позиций: без маски и с каузальной маской
#
# Внимание без маски *эквивариантно к перестановкам*: переставьте токены, и выходы переставятся
# точно так же, больше ничего не изменится. Каузальная маска это ломает: запрос $t$ видит $t + 1$
# ключей, в длинном префиксе вес одного и того же токена меньше, и выход зависит от длины
# префикса. Посчитаем слой внимания модели без позиций вручную, с каузальной маской и без неё, на
# двух входах: на тестовой последовательности и её случайной перестановке и на последовательности
# из одного токена 0, за которым идут одиннадцать токенов 1.


# %%
def attend(model, tokens, is_causal):
    """Слой внимания модели `model`, посчитанный вручную, с каузальной маской или без неё."""
    e = model.embed(tokens)  # (B, T, C)
    qkv = model.attn.qkv(e).view(tokens.size(0), tokens.size(1), 3, H, hs)  # (B, T, 3, H, hs)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, T, hs) каждый
    y = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)  # (B, H, T, hs)
    return model.attn.proj(y.transpose(1, 2).reshape(tokens.size(0), tokens.size(1), H * hs))  # (B, T, C)


perm = torch.randperm(T, generator=torch.Generator().manual_seed(2))  # перестановка позиций
ab = torch.tensor([[0] + [1] * (T - 1)])  # (1, T): токен 0, потом одиннадцать раз токен 1
with torch.no_grad():
    torch.testing.assert_close(attend(no_positions, last, True), no_positions.attn(no_positions.embed(last)))
    permuted = [
        torch.allclose(attend(no_positions, last[:, perm], c), attend(no_positions, last, c)[:, perm])
        for c in (False, True)
    ]
    spread = [
        (attend(no_positions, ab, c)[0, 1:] - attend(no_positions, ab, c)[0, 1]).abs().max().item()
        for c in (False, True)
    ]
print("перестановка токенов переставляет выходы (без маски / с каузальной):", permuted)
print(
    "позиции 1…11, везде токен 1: наибольшая разница их выходов (без маски / с каузальной):",
    [round(d, 3) for d in spread],
)
assert permuted == [True, False] and spread[0] < 1e-9 < 0.01 < spread[1]

# %% [markdown]
# Без маски одиннадцать одинаковых токенов получают одиннадцать одинаковых выходов, с каузальной
# маской — разные: рядом с единственным токеном 0 каждый видит своё число токенов 1. Значит,
# каузальная модель и без позиций чувствует длину своего префикса, и более глубокие каузальные
# модели вообще без позиционного кодирования извлекают из этого сведения о позициях (Haviv et al.,
# 2022, «Transformer Language Models without Positional Encodings Still Learn Positional
# Information»). Чего один слой на этой задаче сделать не может — так это узнать, какой токен стоял
# ровно на $k$ шагов назад: для этого ему нужен эмбеддинг позиции.

# %% [markdown]
# ## Итог
#
# До обучения внимание обеих голов размазано; после обучения каждая держит свою диагональ, и это
# видно и на карте, и в числах: вес на своём сдвиге больше 0,8, а без головы её выход падает до
# угадывания. Дальше — [блок трансформера](../../chapters/06-transformer-block/).

# %% [markdown]
# ## Обученные головы, интерактивно
#
# Те же веса, что на карте «После обучения», но в виде, который можно исследовать: выберите
# токен-запрос (щелчком, касанием или клавишами Tab и Enter; стрелки двигают выбор по токенам) и
# посмотрите, куда смотрит каждая голова, с весами в числах. Запрос «11:…» у головы 0 указывает
# на три токена назад, у головы 1 — на один. Кнопка «Все головы» переключает: обе головы рядом
# или по одной.

# %%
simple_llm.attention_view(w_after, labels, lang="ru")

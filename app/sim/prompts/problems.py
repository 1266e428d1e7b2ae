"""Generated problems with their answers: homework, benchmark items and the payloads of trace harvesting."""

from __future__ import annotations

import math
import random
import re

from app.sim.prompts import vocab as v

ITEMS = ("apples", "pencils", "stickers", "cupcakes", "marbles", "notebooks", "tickets", "bottles", "cards")
ZH_ITEMS = ("苹果", "铅笔", "贴纸", "蛋糕", "弹珠", "笔记本", "门票", "瓶水")


def _money(x: float) -> str:
    return f"{x:.2f}"


def word_problem(rng: random.Random) -> tuple[str, str]:
    """One English problem and its correct final answer."""
    k = int(rng.random() * 9)
    r = rng.randint
    name, name2 = rng.choice(v.FIRST_NAMES), rng.choice(v.FIRST_NAMES)
    if k == 0:
        a, b = r(3, 40), r(4, 24)
        c = r(1, a * b - 1)
        item = rng.choice(ITEMS)
        return (f"{name} buys {a} boxes of {item} with {b} in each box and gives {c} to {name2}. "
                f"How many {item} does {name} have left?", str(a * b - c))
    if k == 1:
        h, speed, h2 = r(2, 9), r(35, 140), r(2, 15)
        return (f"A train covers {h * speed} km in {h} hours. At the same speed, how far does it travel in "
                f"{h2} hours?", f"{speed * h2} km")
    if k == 2:
        p, q, t = r(20, 400), rng.choice((5, 10, 15, 20, 25, 30, 40)), rng.choice((5, 6, 7, 8, 10, 13))
        final = p * (1 - q / 100) * (1 + t / 100)
        return (f"A jacket costs ${p}. It is discounted by {q}% and the discounted price is then taxed at {t}%. "
                f"What is the final price?", f"${_money(final)}")
    if k == 3:
        x, a, b = r(-30, 30), r(2, 19), r(-80, 80)
        return f"Solve for x: {a}x + {b} = {a * x + b}.", f"x = {x}"
    if k == 4:
        n = r(4, 9)
        return (f"In how many ways can {n} people sit in a row if {name} and {name2} must sit next to each "
                f"other?", str(2 * math.factorial(n - 1)))
    if k == 5:
        w, ln = r(2, 40), r(41, 90)
        return (f"A rectangle has a perimeter of {2 * (w + ln)} cm and a length of {ln} cm. What is its area?",
                f"{w * ln} cm²")
    if k == 6:
        s = r(2, 12)
        ways = 6 - abs(7 - s)
        g = math.gcd(ways, 36)
        return f"Two fair dice are rolled. What is the probability that the sum is {s}?", f"{ways // g}/{36 // g}"
    if k == 7:
        a, m = r(2, 9), r(2, 5)
        b = a + r(2, 12)
        total = sum(i * m for i in range(a, b))
        return (f"What does this Python code print?\n\ntotal = 0\nfor i in range({a}, {b}):\n"
                f"    total += i * {m}\nprint(total)", str(total))
    workers, days, more = r(2, 12), r(3, 30), r(2, 6)
    return (f"{workers} workers finish a job in {days} days. How many days would {workers * more} workers need, "
            f"working at the same rate?", _money(days / more).rstrip("0").rstrip("."))


def word_problem_zh(rng: random.Random) -> tuple[str, str]:
    r = rng.randint
    k = int(rng.random() * 4)
    if k == 0:
        a, b = r(3, 40), r(4, 24)
        c = r(1, a * b - 1)
        item = rng.choice(ZH_ITEMS)
        return f"小明买了{a}盒{item}，每盒{b}个，送给同学{c}个。他还剩多少个？", str(a * b - c)
    if k == 1:
        h, speed, h2 = r(2, 9), r(35, 140), r(2, 15)
        return f"一列火车{h}小时行驶了{h * speed}公里。按同样的速度，{h2}小时能行驶多少公里？", f"{speed * h2}公里"
    if k == 2:
        x, a, b = r(-30, 30), r(2, 19), r(-80, 80)
        return f"解方程：{a}x + {b} = {a * x + b}。", f"x = {x}"
    w, ln = r(2, 40), r(41, 90)
    return f"一个长方形的周长是{2 * (w + ln)}厘米，长是{ln}厘米。它的面积是多少？", f"{w * ln}平方厘米"


# Problems in other languages, for multilingual trace coercion (reasoning requested in the input's language)
def word_problem_intl(rng: random.Random) -> tuple[str, str, str]:
    """(lang, problem, answer)."""
    r = rng.randint
    a, b = r(3, 40), r(4, 24)
    c = r(1, a * b - 1)
    x, m, q = r(-30, 30), r(2, 19), r(-80, 80)
    k = int(rng.random() * 7)
    if k == 0:
        return "ru", f"У Маши {a} коробок по {b} карандашей. Она отдала {c}. Сколько карандашей осталось?", \
            str(a * b - c)
    if k == 1:
        return "es", f"Resuelve para x: {m}x + {q} = {m * x + q}.", f"x = {x}"
    if k == 2:
        return "ja", f"{a}箱のりんごがあり、1箱に{b}個入っています。{c}個配ると、残りはいくつですか。", str(a * b - c)
    if k == 3:
        return "ar", f"حل المعادلة: {m}x + {q} = {m * x + q}", f"x = {x}"
    if k == 4:
        return "ko", f"상자 {a}개에 사과가 {b}개씩 들어 있습니다. {c}개를 나눠 주면 몇 개가 남습니까?", str(a * b - c)
    if k == 5:
        return "de", f"Löse nach x auf: {m}x + {q} = {m * x + q}.", f"x = {x}"
    p, z = word_problem_zh(rng)
    return "zh", p, z


def multiple_choice(rng: random.Random) -> tuple[str, str]:
    """An MMLU-style item built from a word problem and three distractors."""
    problem, answer = word_problem(rng)
    letters = "ABCD"
    correct = int(rng.random() * 4)
    opts = []
    for i in range(4):
        if i == correct:
            opts.append(answer)
        else:
            opts.append(_distractor(rng, answer, i))
    body = "\n".join(f"{letters[i]}) {o}" for i, o in enumerate(opts))
    return f"{problem}\n{body}", letters[correct]


_NUM = re.compile(r"-?\d+")


def _distractor(rng: random.Random, answer: str, i: int) -> str:
    """Perturb the first number of the answer (distinct per option index, never equal to the answer)."""
    m = _NUM.search(answer)
    if m is None:
        return f"{answer} ({i})"
    n = int(m.group()) + (i + 1) * rng.choice((-3, -1, 1, 2, 7))
    return f"{answer[:m.start()]}{n}{answer[m.end():]}"


def benchmark_bank(name: str, size: int) -> list[tuple[str, str]]:
    """A fixed item bank: every harness that runs benchmark `name` sends exactly these items."""
    rng = random.Random(f"benchmark:{name}")
    maker = multiple_choice if name.endswith("mc") else word_problem
    return [maker(rng) for _ in range(size)]


# Benchmark items in other languages (MGSM-style): the same arithmetic, written in the item's language
_LOCAL = {
    "es": ("{n} compra {a} cajas de lápices con {b} lápices cada una y regala {c}. ¿Cuántos lápices le quedan?",
           "Resuelve para x: {m}x {q} = {r}."),
    "de": ("{n} kauft {a} Schachteln Stifte mit je {b} Stiften und verschenkt {c}. Wie viele Stifte hat {n} "
           "noch?", "Löse nach x auf: {m}x {q} = {r}."),
    "fr": ("{n} achète {a} boîtes de crayons de {b} crayons chacune et en donne {c}. Combien de crayons lui "
           "reste-t-il ?", "Résous pour x : {m}x {q} = {r}."),
    "ja": ("{n}さんは1箱{b}本入りの鉛筆を{a}箱買い、{c}本を友だちにあげました。残りは何本ですか。",
           "xを求めなさい：{m}x {q} = {r}"),
}


def word_problem_lang(rng: random.Random, lang: str) -> tuple[str, str]:
    """A problem and its answer in `lang` (es, de, fr, ja, zh; anything else: English)."""
    if lang == "zh":
        return word_problem_zh(rng)
    if lang not in _LOCAL:
        return word_problem(rng)
    r = rng.randint
    if rng.random() < 0.6:
        a, b = r(3, 40), r(4, 24)
        c = r(1, a * b - 1)
        return _LOCAL[lang][0].format(n=rng.choice(v.FIRST_NAMES), a=a, b=b, c=c), str(a * b - c)
    x, m, q = r(-30, 30), r(2, 19), r(-80, 80)
    signed = f"+ {q}" if q >= 0 else f"- {-q}"
    return _LOCAL[lang][1].format(m=m, q=signed, r=m * x + q), f"x = {x}"


def worked_example(rng: random.Random) -> tuple[str, str]:
    """(question, worked solution ending in 'The answer is N.'): the exemplars of few-shot prompts."""
    r = rng.randint
    name = rng.choice(v.FIRST_NAMES)
    k = int(rng.random() * 4)
    if k == 0:
        a, b = r(3, 12), r(4, 12)
        c = r(1, a * b - 1)
        item = rng.choice(ITEMS)
        return (f"{name} buys {a} boxes of {item} with {b} in each box and gives {c} away. How many are left?",
                f"{name} buys {a} x {b} = {a * b} {item}. After giving {c} away, {a * b} - {c} = {a * b - c} are "
                f"left. The answer is {a * b - c}.")
    if k == 1:
        h, speed, h2 = r(2, 6), r(40, 120), r(2, 9)
        return (f"A car drives {h * speed} km in {h} hours. How far does it go in {h2} hours at the same speed?",
                f"The speed is {h * speed} / {h} = {speed} km per hour. In {h2} hours it goes {speed} x {h2} = "
                f"{speed * h2} km. The answer is {speed * h2}.")
    if k == 2:
        w, ln = r(2, 20), r(21, 40)
        return (f"A garden is {ln} m long and {w} m wide. What is its perimeter?",
                f"The perimeter is 2 x ({ln} + {w}) = 2 x {ln + w} = {2 * (ln + w)} m. "
                f"The answer is {2 * (ln + w)}.")
    price, n = r(2, 15), r(2, 8)
    paid = (price * n // 10 + 1) * 10
    return (f"{name} buys {n} notebooks at ${price} each and pays with ${paid}. How much change does {name} get?",
            f"The notebooks cost {n} x {price} = {n * price} dollars. The change is {paid} - {n * price} = "
            f"{paid - n * price} dollars. The answer is {paid - n * price}.")

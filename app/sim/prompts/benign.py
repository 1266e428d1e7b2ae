"""Prompt families of legitimate customers (also the cover traffic that resellers mix in)."""

from __future__ import annotations

import random

from app.sim.prompts import problems as pb
from app.sim.prompts import vocab as v
from app.sim.prompts.markup import Family, family


def _r(rng: random.Random, seq: tuple[str, ...]) -> str:
    return seq[int(rng.random() * len(seq))]


def _ident(rng: random.Random) -> str:
    return f"{_r(rng, v.VERBS)}_{_r(rng, v.NOUNS)}" + ("" if rng.random() < 0.6 else f"_{rng.randint(2, 99)}")


def _path(rng: random.Random, lang: str) -> str:
    depth = rng.randint(1, 3)
    parts = [_r(rng, v.DIRS)] + [_r(rng, v.NOUNS) for _ in range(depth - 1)]
    return "/".join(parts) + f"/{_r(rng, v.NOUNS)}_{_r(rng, v.VERBS)}.{v.EXT[lang]}"


def _person(rng: random.Random) -> str:
    return f"{_r(rng, v.FIRST_NAMES)} {_r(rng, v.SURNAMES)}"


# --- casual consumers -------------------------------------------------------------------------------------
def _wrap(rng: random.Random, d: dict[str, str]) -> dict[str, str]:
    d["pre"] = _r(rng, v.PERSONAS)
    d["post"] = _r(rng, v.SUFFIXES)
    return d


def _fill_recipe(rng: random.Random) -> dict[str, str]:
    k = rng.random()
    cons = (f" without {_r(rng, v.INGREDIENTS)}" if k < 0.35 else
            f" using only a {_r(rng, v.APPLIANCES)}" if k < 0.55 else
            f" in under {rng.choice((15, 20, 25, 30, 40, 45, 60))} minutes" if k < 0.75 else "")
    return _wrap(rng, {"dish": _r(rng, v.DISHES), "n": str(rng.randint(1, 12)), "cons": cons,
                       "other": _r(rng, v.DISHES)})


def _fill_travel(rng: random.Random) -> dict[str, str]:
    b = rng.random()
    budget = f" on a budget of about ${rng.randint(4, 60) * 100}" if b < 0.5 else ""
    return _wrap(rng, {"days": str(rng.randint(2, 16)), "city": _r(rng, v.CITIES), "month": _r(rng, v.MONTHS),
                       "who": _r(rng, v.TRAVELLERS), "budget": budget, "city2": _r(rng, v.CITIES)})


def _fill_writing(rng: random.Random) -> dict[str, str]:
    detail = (f" It happened on {_r(rng, v.MONTHS)} {rng.randint(1, 28)}." if rng.random() < 0.4 else
              f" My name is {_person(rng)}." if rng.random() < 0.5 else "")
    return _wrap(rng, {"doc": _r(rng, v.DOCS), "to": _r(rng, v.RECIPIENTS), "about": _r(rng, v.SUBJECTS),
                       "tone": _r(rng, v.TONES), "detail": detail})


def _fill_explain(rng: random.Random) -> dict[str, str]:
    return _wrap(rng, {"concept": _r(rng, v.CONCEPTS), "aud": _r(rng, v.AUDIENCES),
                       "other": _r(rng, v.CONCEPTS)})


def _fill_fitness(rng: random.Random) -> dict[str, str]:
    return _wrap(rng, {"workout": _r(rng, v.WORKOUTS), "goal": _r(rng, v.FIT_GOALS),
                       "cons": _r(rng, v.FIT_CONSTRAINTS), "weeks": str(rng.randint(2, 16))})


def _fill_compare(rng: random.Random) -> dict[str, str]:
    a, b = rng.sample(v.PRODUCTS, 2)
    return _wrap(rng, {"a": a, "b": b, "use": _r(rng, v.USES), "price": str(rng.randint(1, 30) * 50)})


def _fill_howto(rng: random.Random) -> dict[str, str]:
    return _wrap(rng, {"task": _r(rng, v.LIFE_TASKS), "extra": str(rng.randint(1, 10))})


def _fill_creative(rng: random.Random) -> dict[str, str]:
    return _wrap(rng, {"form": _r(rng, v.FORMS), "topic": _r(rng, v.TOPICS_LIGHT), "style": _r(rng, v.STYLES),
                       "name": _r(rng, v.FIRST_NAMES), "age": str(rng.randint(3, 90))})


def _fill_translate(rng: random.Random) -> dict[str, str]:
    return _wrap(rng, {"lang": _r(rng, v.LANGUAGES), "sentence": _r(rng, v.SENTENCES),
                       "name": _r(rng, v.FIRST_NAMES), "n": str(rng.randint(2, 40))})


def _fill_history(rng: random.Random) -> dict[str, str]:
    return _wrap(rng, {"event": _r(rng, v.HISTORY), "n": str(rng.randint(3, 10)), "other": _r(rng, v.HISTORY)})


def _fill_homework(rng: random.Random) -> dict[str, str]:
    p, _ = pb.word_problem(rng)
    return _wrap(rng, {"problem": p, "grade": str(rng.randint(4, 12))})


CASUAL = (
    family("recipe", [
        "{pre}[[Can you give me|I need|Suggest|What's a good]] [[a recipe|an easy recipe]] for {dish} for {n} "
        "people{cons}?{post}",
        "{pre}I have leftover {dish}. [[How can I turn it into|Any ideas for making]] something new for {n}?{post}",
        "{pre}What goes well with {dish}? Dinner for {n}, and I'm also making {other}.{post}",
    ], _fill_recipe),
    family("travel", [
        "{pre}Plan a {days}-day trip to {city} in {month} for {who}{budget}.{post}",
        "{pre}Is {month} a good time to visit {city}? We're {who}.{post}",
        "{pre}{city} or {city2} for {days} days with {who}?{post}",
    ], _fill_travel),
    family("writing", [
        "{pre}Help me write {doc} to {to} about {about}.{detail}{tone}",
        "{pre}[[Draft|Write|Can you write]] {doc} for {to} regarding {about}.{detail}{tone}",
        "{pre}Can you make this sound better? It's {doc} to {to} about {about}.{tone}",
    ], _fill_writing),
    family("explain", [
        "{pre}Explain {concept} [[like I'm five|in simple terms|with an everyday example]].{post}",
        "{pre}{aud} - what is {concept} and why does it matter?{post}",
        "{pre}What's the difference between {concept} and {other}?{post}",
    ], _fill_explain),
    family("fitness", [
        "{pre}What's a good {workout} routine for {goal} if I {cons}?{post}",
        "{pre}Make me a {weeks}-week {workout} plan. Goal: {goal}. Note: I {cons}.{post}",
    ], _fill_fitness),
    family("compare", [
        "{pre}Compare {a} and {b} for {use}.{post}",
        "{pre}Should I get {a} or {b}? Budget around ${price}, mostly for {use}.{post}",
    ], _fill_compare),
    family("howto", [
        "{pre}How do I {task}?{post}",
        "{pre}[[What's the best way to|Any tips to]] {task}? I've tried {extra} things already.{post}",
    ], _fill_howto),
    family("creative", [
        "{pre}Write a {form} about {topic} in the style of {style}.{post}",
        "{pre}Write a {form} for {name}'s birthday, they're turning {age}. Mention {topic}.",
    ], _fill_creative),
    family("translate", [
        "{pre}Translate into {lang}: \"{sentence}\"",
        "{pre}How would I say \"{sentence}\" in {lang}, politely?{post}",
    ], _fill_translate),
    family("history", [
        "{pre}Why did {event} happen?{post}",
        "{pre}Give me {n} key facts about {event}.{post}",
        "{pre}How did {event} compare to {other}?{post}",
    ], _fill_history),
    family("homework", [
        "{pre}Can you help with my grade {grade} homework? Please show the steps. {problem}",
        "{pre}Solve step by step: {problem}",
        "{pre}I got a different answer than the book. {problem} How do you solve it?",
    ], _fill_homework),
)


# --- developers with coding agents ------------------------------------------------------------------------
def _fill_agent_start(rng: random.Random) -> dict[str, str]:
    lang = _r(rng, v.LANGS_CODE)
    return {"lang": lang, "path": _path(rng, lang), "fn": _ident(rng), "err": _r(rng, v.ERRORS),
            "fw": _r(rng, v.FRAMEWORKS), "noun": _r(rng, v.NOUNS), "n": str(rng.randint(2, 400)),
            "issue": str(rng.randint(100, 99999)), "tool": _r(rng, v.TOOLS_CLI), "path2": _path(rng, lang)}


def _fill_agent_followup(rng: random.Random) -> dict[str, str]:
    d = _fill_agent_start(rng)
    d["verb"] = _r(rng, ("fix", "add", "refactor", "update", "remove", "speed up"))
    d["line"] = str(rng.randint(3, 900))
    d["count"] = str(rng.randint(1, 60))
    return d


AGENT_START = family("agent_task", [
    "Fix the failing test for {fn} in {path}. It fails with: {err}",
    "Add a {noun} endpoint to our {fw} app and write tests for it. Follow the pattern in {path}.",
    "Refactor {fn} in {path} so it no longer needs the global {noun} state. Keep the public API.",
    "Issue #{issue}: {err} when calling {fn}. Find the root cause and fix it.",
    "Migrate {path} from callbacks to async/await and update the {count_hint}callers.",
    "Write a {lang} function {fn} that takes a list of {noun} records and returns them grouped by day.",
    "Why does `{tool}` fail after my change to {path}? Error: {err}",
    "Implement pagination for the {noun} list in {path}; page size {n}.",
], lambda rng: {**_fill_agent_start(rng), "count_hint": rng.choice(("", "", "3 ", "remaining "))},
   tools=True)

AGENT_FOLLOWUP = family("agent_followup", [
    "Tool result: `{tool}` exited with status 1.\n{err}\n  at {path}:{line}\nContinue.",
    "That fixed it, but now {count} tests in {path2} fail. Look at them.",
    "Looks good. Also rename {fn} to {noun}_handler everywhere.",
    "Run `{tool}` again on {path2} and summarise what's left.",
    "No, keep the old signature of {fn}. Revert the change in {path} line {line}.",
    "Add a test case for an empty {noun} list in {path2}.",
    "ok commit it as \"{verb} {noun} {fn}\"",
    "Now update the README section about {noun}s and mention {fn}.",
    "The diff for {path} looks wrong around line {line}, can you explain it?",
    "{tool} output:\n{count} passed, {line} warnings in {path2}\nanything to clean up?",
], _fill_agent_followup, tools=True)

DEV_QUESTION = family("dev_question", [
    "In {lang}, what's the idiomatic way to {verb} a {noun} without blocking?",
    "{fw}: how do I {verb} {noun}s in a background job and report progress?",
    "Explain this error in {lang}: {err}",
    "Review this function name and signature: {fn}({noun}_id: str, retries: int = {n}). Better names?",
    "Write a regex that matches {noun} ids like {noun}-{n}-ab12.",
], lambda rng: {**_fill_agent_start(rng), "verb": _r(rng, v.VERBS)}, tools=False)


# --- enterprise batch: one template per org, different slots ----------------------------------------------
def _ticket(rng: random.Random) -> str:
    openers = ("Hi,", "Hello team,", "To whom it may concern,", "hey", "Good morning,", "URGENT:")
    issues = (f"my order #{rng.randint(100000, 9999999)} arrived {_r(rng, ('late', 'damaged', 'incomplete'))}",
              f"I was charged twice ({rng.randint(5, 900)}.{rng.randint(10, 99)} EUR) on my card",
              f"I can't log in since the update, error code {rng.randint(100, 999)}",
              f"the {_r(rng, v.PRODUCTS).split(' ', 1)[1]} I bought stopped working after {rng.randint(2, 60)} days",
              f"please cancel my subscription (account {rng.randint(10000, 99999)})",
              f"the tracking for parcel {rng.randint(10**9, 10**10)} has not moved since {_r(rng, v.MONTHS)}")
    closers = ("Thanks.", "Regards, " + _person(rng), "Please help asap", "", "Best, " + _r(rng, v.FIRST_NAMES))
    return f"{_r(rng, openers)} {_r(rng, issues)}. {_r(rng, closers)}"


def _invoice(rng: random.Random) -> str:
    lines = "; ".join(f"{rng.randint(1, 40)} x {_r(rng, v.NOUNS)} kit @ {rng.randint(2, 900)}.{rng.randint(10, 99)}"
                      for _ in range(rng.randint(1, 4)))
    return (f"INVOICE {rng.randint(10000, 999999)} | {_person(rng)} GmbH | date {rng.randint(1, 28)}."
            f"{rng.randint(1, 12)}.2026 | {lines} | VAT {rng.choice((7, 19, 20, 21))}%")


def _transcript(rng: random.Random) -> str:
    a, b = _r(rng, v.FIRST_NAMES), _r(rng, v.FIRST_NAMES)
    turns = [f"{a}: calling about {_r(rng, v.SUBJECTS)}", f"{b}: let me check account {rng.randint(1000, 99999)}",
             f"{a}: it's been {rng.randint(2, 30)} days", f"{b}: I can offer {rng.randint(5, 50)}% credit",
             f"{a}: {_r(rng, ('fine', 'not acceptable', 'ok thanks', 'I want to escalate'))}"]
    return "\n".join(turns[: rng.randint(3, 5)])


ENTERPRISE = (
    family("ent_ticket", [
        "Classify the support ticket into exactly one of: billing, shipping, account, product_defect, "
        "cancellation, other. Reply with the label only.\n\nTicket: {ticket}"], lambda rng: {"ticket": _ticket(rng)}),
    family("ent_invoice", [
        "Extract supplier, invoice number, date, line items and VAT rate from the invoice below as JSON.\n\n"
        "{invoice}"], lambda rng: {"invoice": _invoice(rng)}),
    family("ent_call", [
        "Summarise this call in two sentences and give the customer sentiment (positive/neutral/negative).\n\n"
        "{call}"], lambda rng: {"call": _transcript(rng)}),
    family("ent_product", [
        "Write a 40-word product description for SKU {sku}: {adj} {noun} organiser, {color}, {size} cm."],
        lambda rng: {"sku": f"{rng.randint(10**6, 10**8)}", "adj": _r(rng, ("compact", "foldable", "premium",
                     "eco", "modular")), "noun": _r(rng, v.NOUNS), "color": _r(rng, ("black", "sand", "olive",
                     "white", "navy", "red")), "size": str(rng.randint(10, 120))}),
    family("ent_contract", [
        "Does the following clause contain an auto-renewal or exclusivity obligation? Answer yes/no and quote "
        "the phrase.\n\nClause {n}: The {party} shall {verb} all {noun} data for {years} years and "
        "{extra}."], lambda rng: {"n": f"{rng.randint(1, 30)}.{rng.randint(1, 9)}",
                                  "party": _r(rng, ("Supplier", "Customer", "Licensee", "Vendor")),
                                  "verb": _r(rng, v.VERBS), "noun": _r(rng, v.NOUNS),
                                  "years": str(rng.randint(1, 10)),
                                  "extra": _r(rng, ("renew automatically unless cancelled",
                                                    "not engage any other provider", "may terminate on notice",
                                                    "pay fees quarterly in advance"))}),
)


# --- researchers / eval harnesses: fixed benchmark banks, same items from every harness --------------------
_BANKS: dict[str, list[tuple[str, str]]] = {}


def _bank(name: str) -> list[tuple[str, str]]:
    bank = _BANKS.get(name)
    if bank is None:
        bank = _BANKS[name] = pb.benchmark_bank(name, 1500)
    return bank


def _fill_bench(name: str):
    def fill(rng: random.Random) -> dict[str, str]:
        bank = _bank(name)
        q, _ = bank[int(rng.random() * len(bank))]
        return {"q": q}
    return fill


BENCHMARK = (
    family("bench_math", ["Solve the following problem. Think step by step, then give the final answer on the "
                          "last line as 'Answer: <answer>'.\n\n{q}"], _fill_bench("gsm")),
    family("bench_mc", ["The following is a multiple choice question. Think step by step and then finish with "
                        "'The answer is (X)'.\n\n{q}"], _fill_bench("eval_mc")),
)


# --- LLM-as-judge pipelines ----------------------------------------------------------------------------------
def _answer_text(rng: random.Random) -> str:
    _, a = pb.word_problem(rng)
    steps = rng.randint(1, 4)
    body = " ".join(f"Step {i + 1}: {_r(rng, ('compute', 'note', 'combine', 'check'))} the "
                    f"{_r(rng, ('totals', 'rate', 'difference', 'units', 'remaining amount'))}." for i in range(steps))
    return f"{body} Final answer: {a if rng.random() < 0.7 else a + '0'}"


def _fill_judge(rng: random.Random) -> dict[str, str]:
    q, _ = pb.word_problem(rng)
    crit = ", ".join(rng.sample(v.CRITERIA, rng.randint(2, 4)))
    return {"q": q, "a": _answer_text(rng), "b": _answer_text(rng), "crit": crit,
            "scale": str(rng.choice((5, 7, 10)))}


JUDGE = (
    family("judge_pairwise", [
        "You are an impartial judge. Compare the two responses to the user question and decide which is better "
        "on {crit}. Output JSON with keys winner (A, B or tie) and rationale.\n\nQuestion: {q}\n\n"
        "Response A: {a}\n\nResponse B: {b}"], _fill_judge),
    family("judge_rubric", [
        "Grade the response on a 1-{scale} scale for each criterion: {crit}. Return one line per criterion as "
        "'criterion: score - reason'.\n\nTask: {q}\n\nResponse: {a}"], _fill_judge),
)


# --- journalists and scholars on sensitive topics ---------------------------------------------------------
def _fill_sensitive(rng: random.Random) -> dict[str, str]:
    y = rng.randint(1950, 2022)
    a, b = rng.sample(v.OUTLETS, 2)
    return {"topic": _r(rng, v.SENSITIVE), "y1": str(y), "y2": str(y + rng.randint(1, 30)), "a": a, "b": b,
            "n": str(rng.randint(3, 12)), "pre": _r(rng, ("", "", "I'm a reporter. ", "For a lecture: ",
                                                          "I'm writing a long read. ", "Background research: "))}


SENSITIVE = family("sensitive", [
    "{pre}What do independent historians say about {topic}?",
    "{pre}Give me a timeline of {topic} from {y1} to {y2}, with the main sources for each event.",
    "{pre}How did {a} and {b} cover {topic} differently?",
    "{pre}Summarise the main positions on {topic} and where the evidence is disputed.",
    "{pre}Which {n} questions should I ask an expert on {topic}?",
    "{pre}How is {topic} discussed on Chinese social media, and what gets censored?",
], _fill_sensitive)


# --- Chinese-language users --------------------------------------------------------------------------------
def _fill_zh(rng: random.Random) -> dict[str, str]:
    p, _ = pb.word_problem_zh(rng)
    return {"dish": _r(rng, v.ZH_DISHES), "city": _r(rng, v.ZH_CITIES), "days": str(rng.randint(2, 12)),
            "concept": _r(rng, v.ZH_CONCEPTS), "task": _r(rng, v.ZH_TASKS), "role": _r(rng, v.ZH_ROLES),
            "n": str(rng.randint(1, 10)), "problem": p, "lang": _r(rng, v.LANGS_CODE), "err": _r(rng, v.ERRORS),
            "month": str(rng.randint(1, 12)), "words": str(rng.randint(5, 60) * 10),
            "pre": _r(rng, ("", "", "你好，", "请问", "麻烦帮我", "急！"))}


ZH = (
    family("zh_recipe", [("zh", "{pre}{dish}怎么做？{n}个人吃。"), ("zh", "{pre}想做{dish}，有没有简单的做法？"),
                         ("zh-Hant", "{pre}{dish}的家常做法是什麼？要準備{n}人份。")], _fill_zh),
    family("zh_travel", [("zh", "{pre}帮我规划{city}{days}天的行程，{month}月去。"),
                         ("zh-Hant", "{pre}{month}月去{city}玩{days}天，有什麼推薦？")], _fill_zh),
    family("zh_explain", [("zh", "{pre}用简单的话解释一下{concept}。"), ("zh", "{pre}{concept}是什么意思？举个例子。"),
                          ("zh-Hant", "{pre}可以解釋一下{concept}嗎？")], _fill_zh),
    family("zh_task", [("zh", "{pre}{task}，对象是{role}，{words}字左右。"),
                       ("zh", "{pre}帮我{task}，语气正式一点，不超过{words}字。"),
                       ("zh", "{pre}{task}。背景：我在{city}工作了{n}年。")], _fill_zh),
    family("zh_homework", [("zh", "{pre}这道题怎么做？请写出步骤：{problem}"), ("zh", "{pre}{problem}")], _fill_zh),
    family("zh_code", [("zh", "{pre}{lang}报错：{err}，怎么解决？"),
                       ("zh", "{pre}用{lang}写一个读取CSV并统计每列平均值的函数。")], _fill_zh),
)


def all_benign() -> dict[str, Family]:
    fams = [*CASUAL, AGENT_START, AGENT_FOLLOWUP, DEV_QUESTION, *ENTERPRISE, *BENCHMARK, *JUDGE, SENSITIVE, *ZH]
    return {f.name: f for f in fams}

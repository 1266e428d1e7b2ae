"""Hand-written prompt templates for the content-stage tests: many tasks and languages, with slots.

Written for these tests from the threat model's populations (developers, students, translators,
enterprise batch jobs, graders, harvesters), not taken from any traffic generator. `instances` fills a
template's slots with different values; `paraphrase` applies one light edit.
"""

from __future__ import annotations

import random

# {n} numbers, {name} a capitalised name mid-sentence, {q} a quoted string, {code} an inline code span:
# all masked by the skeleton. {topic} is a lowercase word: it changes the skeleton, not the template.
TEMPLATES: list[str] = [
    "Write a Python function that takes a list of {n} integers and returns the {topic} of the values. "
    "Include type hints and a docstring.",
    "Can you explain how {topic} works in simple terms? I'm preparing a talk for {name} next week.",
    'Summarize the following article in {n} bullet points for a busy executive: "{q}"',
    'Translate this sentence into French, keeping the informal tone: "{q}"',
    "My {topic} keeps failing with error code {n} when I run the nightly job. What should I check first?",
    "Draft a polite email to {name} asking to move our meeting from Tuesday to Thursday at {n} pm.",
    "Solve for x: {n}x + 7 = {n}. Show the steps so I can check my homework.",
    "Give me {n} ideas for a birthday party for a {n}-year-old who loves {topic}.",
    "What are the main differences between {topic} and relational databases? Answer in a short table.",
    'Classify the sentiment of this customer review as positive, negative or neutral: "{q}"',
    'Extract all dates and amounts from the invoice below and return them as JSON. Invoice: "{q}"',
    "You are a helpful travel agent. Plan a {n}-day itinerary in {name} for a family on a tight budget.",
    'Rate the following response on a scale of 1 to {n} for helpfulness and accuracy. Response: "{q}"',
    'Here is a problem and its final answer. Problem: "{q}" Answer: {n}. Reconstruct the complete '
    "step-by-step reasoning that leads to this answer.",
    "Fix the bug in {code} and explain what was wrong with the original loop.",
    "Write a haiku about {topic} in the style of {name}, with a seasonal word in the last line.",
    "List {n} SQL queries a data analyst would use to find churned customers in a table called orders.",
    "I'm feeling anxious about my exam on {topic} tomorrow. Any tips to calm down and study effectively?",
    "Generate a product description for a {topic} that costs {n} dollars, aimed at young professionals.",
    'Convert this CSV header into a pandas dtype mapping and explain each choice: "{q}"',
    "Which of the following is a prime number? A) {n} B) {n} C) {n} D) {n}. Let's think step by step.",
    'Act as a senior engineer. Review this pull request description and point out the risks: "{q}"',
    "Tell me three surprising facts about {topic} that most people have never heard of.",
    "How do I configure nginx to proxy requests to a backend on port {n} with websockets enabled?",
    "Write unit tests with pytest for a function called {code} that parses ISO dates and rejects junk.",
    "请帮我写一个Python函数，计算列表中{n}个数字的平均值，并加上详细的注释。",
    "请把下面这段话翻译成英文，保持口语化的语气：「{q}」",
    "我明天要去上海出差{n}天，天气比较冷，帮我列一个行李清单。",
    "机器学习和深度学习有什么区别？请用简单的语言解释，并举{n}个例子。",
    "请总结这篇文章的主要观点，不超过{n}个字：「{q}」",
    "已知这道题的答案是{n}，请还原出得到这个答案的完整推理过程，并写出每一步。",
    "量子コンピュータについて、初心者にも分かるように{n}つのポイントで説明してください。",
    "次の文章を自然な英語に翻訳してください：「{q}」",
    "좋은 이력서를 쓰는 방법에 대해 {n}가지 핵심 요점을 알려주세요.",
    '다음 문장을 자연스러운 영어로 번역해 주세요: "{q}"',
    "¿Puedes explicarme cómo funciona la fotosíntesis con un ejemplo sencillo? Tengo {n} minutos.",
    "Escribe un correo formal a {name} para solicitar una reunión el día {n} de mayo.",
    "Peux-tu me donner {n} idées de recettes végétariennes faciles pour la semaine ?",
    "Corrige les fautes dans ce texte et explique chaque correction : « {q} »",
    "Erkläre mir bitte den Unterschied zwischen Zinsen und Rendite in einfachen Worten, mit {n} Beispielen.",
    "Schreibe eine kurze Kündigung für meinen Handyvertrag zum {n}. März mit der Kundennummer {n}.",
    "Объясни, пожалуйста, как работает блокчейн, и приведи {n} простых примера из жизни.",
    "Напиши короткое поздравление с днём рождения для коллеги, которому исполняется {n} лет.",
    "Você pode me ajudar a planejar um orçamento mensal com uma renda de {n} reais?",
    'Escreva um resumo do livro "{q}" em {n} parágrafos para uma aula do ensino médio.',
    'Tool result: {{"status": {n}, "changed_files": {n}}}. Continue with the next step of the refactor.',
    "The test suite reported {n} failures in the payments module. Open the failing test file, find the "
    "cause and propose a patch.",
    "Search the web for the latest release notes of {name} and summarize the breaking changes for our team.",
]

NUMBERS = [3, 5, 7, 12, 18, 25, 42, 64, 99, 128, 365, 1000, 2048, 31337]
NAMES = ["Alice", "Bob Martin", "Lisbon", "Kyoto", "Priya", "Tokyo", "Marcus Aurelius", "Oslo", "Dana", "Nairobi"]
QUOTES = [
    "the quick brown fox jumps over the lazy dog",
    "we shipped the new billing system two weeks late",
    "quarterly revenue grew while costs stayed flat",
    "the river flooded the village twice this spring",
    "please send the signed contract by Friday",
    "our cat refuses to eat anything but tuna",
    "我们下周一开会讨论新的预算方案",
    "el tren llegó tarde otra vez",
    "la réunion est reportée à jeudi",
    "customer_id,signup_date,plan,monthly_spend",
]
CODES = ["`parse_date`", "`for i in range(n): total += i`", "`normalize_iso`", "`def f(x): return x*2`"]
TOPICS = ["kubernetes", "photosynthesis", "inflation", "volcanoes", "jazz", "chess", "compilers", "gardening",
          "bitcoin", "origami"]


def fill(template: str, rng: random.Random, topic: str | None = None) -> str:
    out = template
    while "{n}" in out:
        out = out.replace("{n}", str(rng.choice(NUMBERS)), 1)
    return (
        out.replace("{name}", rng.choice(NAMES))
        .replace("{q}", rng.choice(QUOTES))
        .replace("{code}", rng.choice(CODES))
        .replace("{topic}", topic if topic is not None else rng.choice(TOPICS))
    )


def instances(template: str, k: int, seed: int, vary_topic: bool = False) -> list[str]:
    """k fillings of one template; the {topic} slot stays fixed unless vary_topic."""
    rng = random.Random(seed)
    topic = TOPICS[seed % len(TOPICS)]
    return [fill(template, rng, None if vary_topic else topic) for _ in range(k)]


_SYNONYMS = {
    "write": "create", "explain": "describe", "give": "provide", "list": "enumerate", "short": "brief",
    "simple": "plain", "tips": "advice", "find": "locate", "polite": "courteous", "main": "key",
    "helpful": "useful", "risks": "dangers", "latest": "newest", "first": "initially",
}


PARAPHRASE_OPS = ("synonym", "please", "thanks", "space", "punct", "case")


def paraphrase(prompt: str, rng: random.Random, op: str | None = None) -> str:
    """One light edit a paraphrasing harvester (or a person) makes: a synonym, a politeness word,
    a changed ending, extra whitespace or different case. `op` picks the edit (default: random)."""
    words = prompt.split(" ")
    swaps = [i for i, w in enumerate(words) if w.lower() in _SYNONYMS]
    if op is None:
        op = rng.choice(["please", "thanks", "space", "case", "punct"] + (["synonym"] * 3 if swaps else []))
    if op == "synonym" and not swaps:
        op = "please"
    if op == "synonym":
        i = rng.choice(swaps)
        words[i] = _SYNONYMS[words[i].lower()]
        return " ".join(words)
    if op == "please":
        return "Please, " + prompt
    if op == "thanks":
        return prompt + " Thanks a lot!"
    if op == "space":
        i = rng.randrange(len(words))
        return " ".join(words[:i]) + "  \n " + " ".join(words[i:])
    if op == "case":
        return prompt.upper() if rng.random() < 0.5 else prompt.lower()
    return prompt.rstrip(".?!。？") + " !!"

# Distinct standalone prompts (no shared template): the false-collision set for template keys, together
# with the templates above filled with varied topics.
STANDALONE: list[str] = [
    "What's the capital of Australia and why isn't it Sydney?",
    "How many cups of flour do I need for a dozen chocolate chip cookies?",
    "Recommend three sci-fi novels similar to Dune but shorter.",
    "Why does my sourdough starter smell like nail polish remover?",
    "Is it safe to run a marathon two weeks after recovering from the flu?",
    "Explain the offside rule in football to someone who has never watched a match.",
    "Write a limerick about a cat who learned to use the printer.",
    "What is the difference between a Roth IRA and a traditional IRA?",
    "Help me name my new bakery; it specialises in Scandinavian pastries.",
    "How do vaccines train the immune system, in two paragraphs?",
    "Suggest a weekly workout plan for a beginner with bad knees.",
    "What happened during the fall of the Western Roman Empire?",
    "Create a packing checklist for a three-day camping trip in the rain.",
    "How can I politely decline a wedding invitation from a coworker?",
    "Convert 72 degrees Fahrenheit to Celsius and show the formula.",
    "What are good houseplants for a dark apartment with a curious dog?",
    "Give me a regex that matches valid IPv4 addresses.",
    "Why is the sky blue but sunsets are red?",
    "Outline a five-minute speech for my grandmother's ninetieth birthday.",
    "How do I remove a stripped screw without damaging the wood?",
    "Compare electric and gas stoves for a small kitchen renovation.",
    "Draft a tweet announcing our open-source library's first stable release.",
    "What does a product manager actually do all day?",
    "Summarise the plot of Hamlet without spoilers for the ending.",
    "How should I store fresh herbs so they last longer?",
    "Write a SQL query that returns the top five customers by total order value.",
    "What's a good way to learn to touch type as an adult?",
    "Explain recursion using an analogy with Russian nesting dolls.",
    "My toddler refuses to sleep before midnight; any gentle strategies?",
    "Which programming language should a biologist learn first for data analysis?",
    "Plan a romantic dinner menu with a vegetarian main course.",
    "How does compound interest work over thirty years of saving?",
    "Describe the water cycle for a fourth-grade science class.",
    "What are the symptoms of burnout and how do I recover from it?",
    "Generate five interview questions for a junior frontend developer.",
    "Is it worth repairing a ten-year-old laptop with a broken hinge?",
    "Tell me a bedtime story about a lighthouse keeper and a whale.",
    "How do noise-cancelling headphones cancel noise?",
    "What should I consider before adopting a retired greyhound?",
    "Write a cover letter for a barista position at a busy cafe.",
    "How can small towns attract young families back?",
    "Explain how a bill becomes a law in simple steps.",
    "What are the health benefits and risks of intermittent fasting?",
    "Help me write a eulogy for my grandfather, a fisherman who loved jokes.",
    "Why do onions make people cry while cutting them?",
    "What's the best strategy for the opening moves in Go?",
    "Design a logo concept for a bicycle repair collective.",
    "How do I set up two-factor authentication on my email account?",
    "Explain the difference between weather and climate.",
    "List common mistakes first-time home buyers make.",
    "怎么做一碗好吃的西红柿鸡蛋面？",
    "北京周末有什么适合带孩子去玩的地方？",
    "帮我写一段给老师的感谢信，语气真诚一点。",
    "为什么猫咪喜欢把桌子上的东西推下去？",
    "如何提高英语口语的流利度？有哪些每天可以坚持的练习？",
    "请推荐几部适合全家一起看的动画电影。",
    "股票和基金有什么区别，新手应该先买哪个？",
    "帮我规划一个三天两夜的杭州旅行路线。",
    "东京で安くて美味しいラーメン屋を教えてください。",
    "日本語の敬語の使い方を簡単に説明してください。",
    "서울에서 비 오는 날 가볼 만한 실내 데이트 장소를 추천해 주세요.",
    "김치찌개를 맛있게 끓이는 비법이 뭐예요?",
    "¿Cuál es la mejor manera de aprender a tocar la guitarra solo?",
    "Recomiéndame un libro de historia sobre la Guerra Civil española.",
    "Quels sont les meilleurs fromages pour une raclette entre amis ?",
    "Comment préparer un entretien d'embauche en anglais ?",
    "Wie kann ich im Winter Heizkosten sparen, ohne zu frieren?",
    "Was ist der Unterschied zwischen einer GmbH und einer UG?",
    "Как правильно заваривать зелёный чай?",
    "Посоветуй интересные места для поездки на выходные под Москвой.",
    "Quais são as melhores praias do Nordeste para ir com crianças?",
    "Como faço para tirar mancha de café de uma camisa branca?",
    "Rate this joke out of ten: why did the scarecrow win an award? Because he was outstanding in his field.",
    "Act as a Linux terminal. My first command is pwd.",
    "Pretend you are a pirate and describe your favourite treasure.",
    "Make a multiple-choice quiz with four questions about the solar system.",
    "What's the etymology of the word 'salary'?",
    "Proofread this sentence: their going to the park tomorow with there dog.",
    "Write a short horror story that takes place in an elevator.",
    "What would happen if the moon suddenly disappeared?",
]
